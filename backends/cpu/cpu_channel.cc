#include "cpu_channel.h"

#include <chrono>

#include "hal/plugin/collective_engine.h"

namespace hal::cpu {

namespace {

uint64_t steady_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

// Host address of byte `offset` of a CPU buffer; null for virtual buffers (no storage).
char* host_address(plugin::BufferImpl* b, uint64_t offset) {
  if (!b) return nullptr;
  Result<void*> p = b->map();
  return p.ok() && *p ? static_cast<char*>(*p) + offset : nullptr;
}

}  // namespace

Result<std::unique_ptr<plugin::ChannelImpl>> create_cpu_channel(
    plugin::DeviceImpl* device, const plugin::ChannelConfig& config) {
  auto c = plugin::KitChannel::create(device, config);
  if (!c.ok()) return c.status();
  return std::unique_ptr<plugin::ChannelImpl>(std::move(*c));
}

Status run_cpu_collective(const plugin::CollectiveCall& call, plugin::RecordLog& records) {
  auto* channel = static_cast<plugin::KitChannel*>(call.channel);
  plugin::MemberCollective member;
  member.shape = call.shape;
  member.send = host_address(call.send, call.send_offset);
  member.recv = host_address(call.recv, call.recv_offset);
  const uint64_t start = steady_ns();
  plugin::CollectiveOutcome outcome;
  HAL_RETURN_IF_ERROR(channel->run(member, &outcome));
  if (records.enabled()) {
    const int32_t rank = channel->rank(), size = channel->size();
    // Shared memory: this member reads its own data and what it takes from its peers.
    CommandRecord r = plugin::collective_record(call, rank, size, outcome);
    r.start_ns = start;
    r.end_ns = steady_ns();
    r.bytes_read = call.shape.send_bytes(rank, size) + outcome.bytes_received;
    r.bytes_written = call.shape.recv_bytes(rank, size);
    records.add(r);
  }
  return ok_status();
}

}  // namespace hal::cpu

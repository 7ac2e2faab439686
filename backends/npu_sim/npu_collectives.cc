// Collectives of the simulated NPU (npu_collectives.h): the timing model, and the channel
// and stream entry points that run the plugin kit's engine and book simulated time.
#include "npu_collectives.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "hal/plugin/collective_engine.h"
#include "npu_device.h"

namespace hal::npu_sim {

CollectiveLink link_between_devices(const DeviceSpec& from, const DeviceSpec& to, bool same_device,
                                    bool peer_linked) {
  CollectiveLink l;
  if (same_device) {
    // Two members on one device: a copy within its memory (read and write).
    l.latency_s = from.command_overhead_s;
    l.bandwidth_bytes_per_s = from.sustained_memory_bandwidth() / 2;
    l.link_class = LinkClass::kNone;
  } else if (peer_linked) {
    l.latency_s = from.peer_link.latency_s;
    l.bandwidth_bytes_per_s = from.peer_link.bandwidth_bytes_per_s;
    l.link_class =
        from.peer_link.kind.rfind("ucie", 0) == 0 ? LinkClass::kDieToDie : LinkClass::kPeer;
  } else {
    l.latency_s = from.host_link.latency_s + to.host_link.latency_s;
    l.bandwidth_bytes_per_s =
        std::min(from.host_link.bandwidth_bytes_per_s, to.host_link.bandwidth_bytes_per_s);
    l.link_class = LinkClass::kHostStaged;
  }
  return l;
}

CollectiveLink link_across_processes(const DeviceSpec& spec) {
  // Device -> host -> network -> host -> device; the other end is assumed alike.
  CollectiveLink l;
  l.latency_s = 2 * spec.host_link.latency_s;
  l.bandwidth_bytes_per_s = spec.host_link.bandwidth_bytes_per_s;
  if (spec.network_link.present) {
    l.latency_s += spec.network_link.latency_s;
    l.bandwidth_bytes_per_s =
        std::min(l.bandwidth_bytes_per_s, spec.network_link.bandwidth_bytes_per_s);
  }
  l.link_class = LinkClass::kNetwork;
  return l;
}

CollectivePlan plan_collective(const CollectiveShape& shape, int32_t n,
                               const std::function<CollectiveLink(int32_t, int32_t)>& link,
                               const std::vector<const DeviceSpec*>& specs) {
  const CollectiveTiming t = time_collective(shape, n, link);
  CollectivePlan p;
  p.algorithm = t.algorithm;
  p.link_s = t.link_s;
  p.edges = t.edges;
  p.members.resize(size_t(n));
  for (int32_t i = 0; i < n; ++i) {
    auto& m = p.members[size_t(i)];
    m.bytes_sent = t.members[size_t(i)].bytes_sent;
    m.bytes_received = t.members[size_t(i)].bytes_received;
    m.peer = t.members[size_t(i)].peer;
    m.link_class = t.members[size_t(i)].link_class;
  }
  const bool p2p = shape.kind == CollectiveKind::kSend || shape.kind == CollectiveKind::kRecv;

  // Device-memory traffic: the DMA reads what it sends, writes what it receives, and each
  // member reads its input and writes its result once.
  const double flops = reduction_flops(shape, n);
  for (int32_t i = 0; i < n; ++i) {
    auto& m = p.members[size_t(i)];
    const DeviceSpec& s = *specs[size_t(std::min<int32_t>(i, int32_t(specs.size()) - 1))];
    const int32_t rank = p2p ? 0 : i;
    m.dram_bytes_read = m.bytes_sent + (p2p ? 0 : shape.send_bytes(rank, n));
    m.dram_bytes_written = m.bytes_received + (p2p ? 0 : shape.recv_bytes(rank, n));
    p.memory_s = std::max(p.memory_s, double(m.dram_bytes_read + m.dram_bytes_written) /
                                          s.sustained_memory_bandwidth());
    p.compute_s = std::max(p.compute_s, flops / s.vector_flops);
    p.overhead_s = std::max(p.overhead_s, s.command_overhead_s);
  }
  const double body = std::max({p.link_s, p.compute_s, p.memory_s});
  p.duration_s = p.overhead_s + body;
  if (p.overhead_s >= body) {
    p.bound = BoundBy::kOverhead;
  } else if (body == p.link_s) {
    p.bound = BoundBy::kLink;
  } else if (body == p.memory_s) {
    p.bound = BoundBy::kMemory;
  } else {
    p.bound = BoundBy::kCompute;
  }
  return p;
}

// ---- the HAL classes -------------------------------------------------------------------

Result<std::unique_ptr<plugin::ChannelImpl>> NpuDevice::create_channel(
    const plugin::ChannelConfig& config) {
  auto c = plugin::KitChannel::create(this, config);
  if (!c.ok()) return c.status();
  return std::unique_ptr<plugin::ChannelImpl>(std::move(*c));
}

Status NpuStream::collective(const plugin::CollectiveCall& call) {
  const uint64_t not_before = device_->system().host_fence();
  enqueue([this, call, not_before]() -> Status {
    Status s = run_collective(call, not_before);
    return s.ok() ? s : s.with_command_tag(call.tag);  // names the failed node to the host
  });
  return ok_status();
}

namespace {

char* data_at(plugin::BufferImpl* b, uint64_t offset) {
  char* d = b ? static_cast<NpuBuffer*>(b)->data() : nullptr;
  return d ? d + offset : nullptr;
}

// The calendars a transfer from device a to device b occupies.
void lanes_of_edge(NpuDevice& a, NpuDevice& b, std::vector<BusyCalendar*>* out) {
  if (&a == &b) {
    out->push_back(&a.lane(Lane::kCompute));
  } else if (a.has_peer_link_to(b)) {
    out->push_back(&a.lane(Lane::kPeerOut));
  } else {
    out->push_back(&a.lane(Lane::kHostOut));
    out->push_back(&b.lane(Lane::kHostIn));
  }
}

// Books [start, start + duration) on every calendar at the earliest start >= ready that
// is free on all of them; returns the start.
uint64_t book_together(std::vector<BusyCalendar*> lanes, uint64_t ready, uint64_t duration) {
  std::sort(lanes.begin(), lanes.end());
  lanes.erase(std::unique(lanes.begin(), lanes.end()), lanes.end());
  uint64_t start = ready;
  for (int round = 0; round < 64; ++round) {
    bool moved = false;
    for (BusyCalendar* c : lanes) {
      const uint64_t s = c->earliest_start(start, duration);
      if (s > start) {
        start = s;
        moved = true;
      }
    }
    if (!moved) break;
  }
  for (BusyCalendar* c : lanes) c->book(c->earliest_start(start, duration), duration);
  return start;
}

// on_all_arrived of an in-process group: members are NpuStreams (context) of this plugin.
void book_in_process(std::span<plugin::MemberCollective* const> members,
                     std::span<plugin::CollectiveOutcome> outcomes) {
  const int32_t n = int32_t(members.size());
  std::vector<NpuDevice*> devs;
  std::vector<const DeviceSpec*> specs;
  for (auto* m : members) {
    devs.push_back(&static_cast<NpuStream*>(m->context)->device());
    specs.push_back(&devs.back()->spec());
  }
  const CollectiveShape& shape = members[0]->shape;
  const CollectivePlan plan = plan_collective(
      shape, n,
      [&](int32_t a, int32_t b) {
        return link_between_devices(*specs[size_t(a)], *specs[size_t(b)],
                                    devs[size_t(a)] == devs[size_t(b)],
                                    devs[size_t(a)]->has_peer_link_to(*devs[size_t(b)]));
      },
      specs);
  std::vector<BusyCalendar*> lanes;
  for (auto [a, b] : plan.edges) lanes_of_edge(*devs[size_t(a)], *devs[size_t(b)], &lanes);
  uint64_t ready = 0;
  for (auto* m : members) ready = std::max(ready, m->ready_ns);
  const uint64_t duration = to_sim_ns(plan.duration_s);

  // Members of one plugin share its system; lock each distinct system's timeline once.
  std::set<NpuSystem*> systems;
  for (NpuDevice* d : devs) systems.insert(&d->system());
  std::vector<std::unique_lock<std::mutex>> locks;
  for (NpuSystem* s : systems) locks.emplace_back(s->timeline_mutex());
  const uint64_t start = book_together(lanes, ready, duration);
  const bool p2p = shape.kind == CollectiveKind::kSend || shape.kind == CollectiveKind::kRecv;
  for (int32_t i = 0; i < n; ++i) {
    const auto& pm = plan.members[size_t(i)];
    WorkCounters& c = devs[size_t(i)]->counters();
    ++c.commands;
    c.link_bytes += pm.bytes_sent;
    c.dram_bytes_read += pm.dram_bytes_read;
    c.dram_bytes_written += pm.dram_bytes_written;
    plugin::CollectiveOutcome& o = outcomes[size_t(i)];
    o.bytes_sent = pm.bytes_sent;
    o.bytes_received = pm.bytes_received;
    o.peer_rank = pm.peer < 0 ? -1 : (p2p ? members[0]->shape.peer : pm.peer);
    o.link = pm.link_class;
    o.algorithm = plan.algorithm;
    o.bound = plan.bound;
    o.start_ns = start;
    o.end_ns = start + duration;
  }
}

}  // namespace

Status NpuStream::run_collective(const plugin::CollectiveCall& call, uint64_t not_before) {
  auto* channel = static_cast<plugin::KitChannel*>(call.channel);
  const int32_t rank = channel->rank(), size = channel->size();
  CommandTicket ticket;
  ticket.kind = CommandKind::kCollective;
  ticket.tag = call.tag;
  ticket.bytes = std::max(call.shape.send_bytes(rank, size), call.shape.recv_bytes(rank, size));
  if (Status admitted = device_->admit(ticket); !admitted.ok()) {
    // The device failed this collective: release its peers now rather than by timeout.
    channel->abort(admitted.message());
    return admitted;
  }

  plugin::MemberCollective member;
  member.shape = call.shape;
  member.send = data_at(call.send, call.send_offset);
  member.recv = data_at(call.recv, call.recv_offset);
  member.context = this;
  member.ready_ns = ready_time(not_before);
  plugin::CollectiveOutcome outcome;
  if (!channel->across_processes()) {
    HAL_RETURN_IF_ERROR(channel->run(member, &outcome, &book_in_process));
  } else {
    HAL_RETURN_IF_ERROR(channel->run(member, &outcome, {}, /*agree_on_start=*/true));
    const bool p2p =
        call.shape.kind == CollectiveKind::kSend || call.shape.kind == CollectiveKind::kRecv;
    const int32_t n = p2p ? 2 : size;
    const std::vector<const DeviceSpec*> specs(size_t(n), &device_->spec());
    const CollectivePlan plan = plan_collective(
        call.shape, n, [&](int32_t, int32_t) { return link_across_processes(device_->spec()); },
        specs);
    const auto& pm =
        plan.members[size_t(p2p ? (call.shape.kind == CollectiveKind::kSend ? 0 : 1) : rank)];
    const uint64_t duration = to_sim_ns(plan.duration_s);
    std::lock_guard<std::mutex> lock(device_->system().timeline_mutex());
    const uint64_t start =
        book_together({&device_->lane(Lane::kHostOut), &device_->lane(Lane::kHostIn)},
                      outcome.agreed_start_ns, duration);
    WorkCounters& c = device_->counters();
    ++c.commands;
    c.link_bytes += pm.bytes_sent;
    c.dram_bytes_read += pm.dram_bytes_read;
    c.dram_bytes_written += pm.dram_bytes_written;
    outcome.bytes_sent = pm.bytes_sent;
    outcome.bytes_received = pm.bytes_received;
    outcome.peer_rank = call.shape.kind == CollectiveKind::kSend ? call.shape.peer
                        : pm.peer >= 0 && !p2p                   ? pm.peer
                                                                 : -1;
    outcome.link = LinkClass::kNetwork;
    outcome.algorithm = plan.algorithm;
    outcome.bound = plan.bound;
    outcome.start_ns = start;
    outcome.end_ns = start + duration;
  }
  clock_ns_.store(outcome.end_ns);
  {
    std::lock_guard<std::mutex> lock(device_->system().timeline_mutex());
    ++counters_.commands;
    counters_.link_bytes += outcome.bytes_sent;
  }
  if (records().enabled()) {
    // DMA: what goes out is read from device memory, what comes in is written to it.
    CommandRecord r = plugin::collective_record(call, rank, size, outcome);
    r.start_ns = outcome.start_ns;
    r.end_ns = outcome.end_ns;
    r.bytes_read = outcome.bytes_sent + call.shape.send_bytes(rank, size);
    r.bytes_written = outcome.bytes_received + call.shape.recv_bytes(rank, size);
    records().add(r);
  }
  return ok_status();
}

}  // namespace hal::npu_sim

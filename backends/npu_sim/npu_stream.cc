// Streams of the simulated NPU: functional execution in order on a worker thread, and
// simulated time (npu_device.h's top comment describes the clock rules).
#include <algorithm>
#include <cstring>

#include "npu_device.h"
#include "npu_kernels.h"

namespace hal::npu_sim {

namespace {

char* data_of(plugin::BufferImpl* b) { return b ? static_cast<NpuBuffer*>(b)->data() : nullptr; }

}  // namespace

NpuStream::NpuStream(NpuDevice* device, uint32_t flags)
    : HostQueueStream(flags), device_(device), clock_ns_(device->system().host_fence()) {
  set_stream_live(static_cast<const plugin::StreamImpl*>(this), true);
}

NpuStream::~NpuStream() {
  set_stream_live(static_cast<const plugin::StreamImpl*>(this), false);
  drain();  // the queued work uses this stream's clock and counters
}

uint64_t NpuStream::ready_time(uint64_t not_before) {
  const uint64_t ready = std::max(clock_ns_.load(), not_before);
  clock_ns_.store(ready);
  return ready;
}

WorkCounters NpuStream::counters() const {
  std::lock_guard<std::mutex> lock(device_->system().timeline_mutex());
  return counters_;
}

Status NpuStream::run_command(CommandTicket ticket, const CommandCost& cost, Booking booking,
                              Attribution who, uint64_t not_before,
                              const std::function<Status()>& work) {
  ticket.modeled_duration_s = cost.duration_s;
  // A failure names its command by tag (StatusDetail), so the host can tell which failed.
  if (Status s = device_->admit(ticket); !s.ok()) return s.with_command_tag(ticket.tag);
  if (work)
    if (Status s = work(); !s.ok()) return s.with_command_tag(ticket.tag);

  const uint64_t ready = ready_time(not_before);
  const uint64_t duration = to_sim_ns(cost.duration_s * ticket.duration_scale);
  uint64_t start = ready, end = ready;
  {
    std::lock_guard<std::mutex> lock(device_->system().timeline_mutex());
    if (booking.second) {
      end = reserve_together(*booking.first, *booking.second, ready, duration, &start);
    } else {
      end = booking.first->reserve(ready, duration, &start);
    }
    const bool is_op = ticket.kind == CommandKind::kOp;
    auto credit = [&](WorkCounters& c, bool reads, bool writes, bool count) {
      if (count) {
        ++c.commands;
        if (is_op) ++c.ops;
        c.flops += cost.flops;
        c.sram_bytes_read += cost.sram_bytes_read;
        c.sram_bytes_written += cost.sram_bytes_written;
        c.link_bytes += cost.link_bytes;
      }
      if (reads) c.dram_bytes_read += cost.dram_bytes_read;
      if (writes) c.dram_bytes_written += cost.dram_bytes_written;
    };
    credit(counters_, true, true, true);
    NpuDevice* reader = who.read_device ? who.read_device : device_;
    NpuDevice* writer = who.write_device ? who.write_device : device_;
    credit(device_->counters(), false, false, true);
    credit(reader->counters(), true, false, false);
    credit(writer->counters(), false, true, false);
  }
  clock_ns_.store(end);

  if (records().enabled()) {
    CommandRecord r;
    r.tag = ticket.tag;
    r.command = ticket.kind;
    r.op = ticket.op;
    r.start_ns = start;
    r.end_ns = end;
    r.flops = cost.flops;
    r.bytes_read = cost.dram_bytes_read;
    r.bytes_written = cost.dram_bytes_written;
    r.sram_bytes_read = cost.sram_bytes_read;
    r.sram_bytes_written = cost.sram_bytes_written;
    r.link_bytes = cost.link_bytes;
    r.bound = cost.bound;
    records().add(r);
  }
  return ok_status();
}

Status NpuStream::copy(const plugin::CopyCall& c) {
  const uint64_t not_before = enqueue_fence_ns();
  enqueue([this, c, not_before]() -> Status {
    CommandTicket ticket;
    ticket.kind = c.direction;
    ticket.tag = c.tag;
    ticket.bytes = c.size_bytes;
    NpuDevice* src = c.src_buffer ? static_cast<NpuDevice*>(c.src_buffer->device()) : nullptr;
    NpuDevice* dst = c.dst_buffer ? static_cast<NpuDevice*>(c.dst_buffer->device()) : nullptr;
    CommandCost cost;
    Booking booking;
    Attribution who;
    switch (c.direction) {
      case CommandKind::kCopyHostToDevice:
        cost = dst->model().copy_host_to_device(c.size_bytes);
        booking.first = &dst->lane(Lane::kHostIn);
        who.write_device = dst;
        break;
      case CommandKind::kCopyDeviceToHost:
        cost = src->model().copy_device_to_host(c.size_bytes);
        booking.first = &src->lane(Lane::kHostOut);
        who.read_device = src;
        break;
      case CommandKind::kCopyDeviceToDevice:
        cost = src->model().copy_on_device(c.size_bytes);
        booking.first = &src->lane(Lane::kCompute);
        who.read_device = who.write_device = src;
        break;
      default: {  // peer: over the card's switch when linked, else staged through the host
        const bool direct = src->has_peer_link_to(*dst);
        cost = PerfModel::copy_peer(c.size_bytes, src->spec(), dst->spec(), direct);
        if (direct) {
          booking.first = &src->lane(Lane::kPeerOut);
        } else {
          booking.first = &src->lane(Lane::kHostOut);
          booking.second = &dst->lane(Lane::kHostIn);
        }
        who.read_device = src;
        who.write_device = dst;
        break;
      }
    }
    auto work = [&]() -> Status {
      if (c.size_bytes == 0) return ok_status();
      const char* from = c.src_host ? static_cast<const char*>(c.src_host) : data_of(c.src_buffer);
      char* to = c.dst_host ? static_cast<char*>(c.dst_host) : data_of(c.dst_buffer);
      if (!to) return ok_status();  // no storage: nothing to move
      if (from) {
        std::memmove(to + (c.dst_host ? 0 : c.dst_offset), from + (c.src_host ? 0 : c.src_offset),
                     c.size_bytes);
      } else {
        // A buffer without storage reads as zeros (timing-only or virtual memory).
        std::memset(to + (c.dst_host ? 0 : c.dst_offset), 0, c.size_bytes);
      }
      return ok_status();
    };
    return run_command(ticket, cost, booking, who, not_before, work);
  });
  return ok_status();
}

Status NpuStream::fill(const plugin::FillCall& f) {
  const uint64_t not_before = enqueue_fence_ns();
  enqueue([this, f, not_before]() -> Status {
    CommandTicket ticket;
    ticket.kind = CommandKind::kFill;
    ticket.tag = f.tag;
    ticket.bytes = f.size_bytes;
    const CommandCost cost = device_->model().fill(f.size_bytes);
    auto work = [&]() -> Status {
      char* base = data_of(f.buffer);
      if (!base || f.size_bytes == 0) return ok_status();
      plugin::write_fill_pattern(base + f.offset, f);
      return ok_status();
    };
    return run_command(ticket, cost, Booking{&device_->lane(Lane::kCompute), nullptr}, {},
                       not_before, work);
  });
  return ok_status();
}

Status NpuStream::dispatch(const plugin::OpCall& op, uint64_t tag) {
  const uint64_t not_before = enqueue_fence_ns();
  enqueue([this, op, tag, not_before]() -> Status {
    const OpSpec spec = op.spec();
    CommandTicket ticket;
    ticket.kind = CommandKind::kOp;
    ticket.op = op.kind;
    ticket.tag = tag;
    const CommandCost cost = device_->model().op(spec);
    auto work = [&]() -> Status {
      // Computed only when every tensor has storage: timing-only and virtual buffers
      // are timed and accounted but hold no data.
      const void* inputs[kMaxOpInputs] = {};
      for (int i = 0; i < op.num_inputs; ++i) {
        const char* d = data_of(op.inputs[i].buffer);
        if (!d) return ok_status();
        inputs[i] = d + op.inputs[i].offset_bytes;
      }
      char* out = data_of(op.output.buffer);
      if (!out) return ok_status();
      Status s =
          execute_op(spec, inputs, out + op.output.offset_bytes, device_->spec().compute_precision);
      return s.ok() ? s : s.with_context(std::string(op_kind_name(op.kind)));
    };
    return run_command(ticket, cost, Booking{&device_->lane(Lane::kCompute), nullptr}, {},
                       not_before, work);
  });
  return ok_status();
}

uint64_t NpuStream::enqueue_fence_ns() { return device_->system().host_fence(); }

uint64_t NpuStream::event_time_ns(uint64_t fence_ns) { return ready_time(fence_ns); }

void NpuStream::on_event_waited(uint64_t event_time_ns) {
  if (event_time_ns > clock_ns_.load()) clock_ns_.store(event_time_ns);
}

Status NpuStream::synchronize() {
  Status s = HostQueueStream::synchronize();
  device_->system().observe(clock_ns_.load());
  return s;
}

}  // namespace hal::npu_sim

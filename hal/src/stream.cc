#include "hal/stream.h"

#include <memory>
#include <mutex>
#include <vector>

#include "c_convert.h"
#include "hal/device.h"
#include "hal/units.h"
#include "loaded_plugin.h"

namespace hal {

namespace {

struct HostFuncBox {
  std::function<void()> fn;
};

void run_host_func(void* user) {
  std::unique_ptr<HostFuncBox> box(static_cast<HostFuncBox*>(user));
  try {
    box->fn();
  } catch (...) {
    // Host functions report failures through captured state, never by unwinding
    // into a plugin thread.
  }
}

// Failures of work the host runs inside a stream (staged copies), reported by the
// stream's next synchronize(). Keyed by stream handle so Stream stays a thin handle.
struct DeferredErrors {
  std::mutex mu;
  std::vector<std::pair<hal_stream*, Status>> errors;

  void add(hal_stream* s, Status st) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [h, e] : errors)
      if (h == s) return;  // keep the first
    errors.emplace_back(s, std::move(st));
  }
  Status take(hal_stream* s) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = errors.begin(); it != errors.end(); ++it) {
      if (it->first == s) {
        Status st = std::move(it->second);
        errors.erase(it);
        return st;
      }
    }
    return ok_status();
  }
};

DeferredErrors& deferred_errors() {
  static DeferredErrors* d = new DeferredErrors();  // never destroyed: used at exit
  return *d;
}

}  // namespace

Stream::~Stream() {
  if (handle_) {
    device_->plugin().api->stream_destroy(handle_);
    deferred_errors().take(handle_).ignore();
  }
}

Stream::Stream(Stream&& o) noexcept : device_(o.device_), handle_(o.handle_) { o.handle_ = nullptr; }

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    if (handle_) device_->plugin().api->stream_destroy(handle_);
    device_ = o.device_;
    handle_ = o.handle_;
    o.handle_ = nullptr;
  }
  return *this;
}

Status Stream::copy_from_host(const void* src, const Buffer& dst, uint64_t dst_offset,
                              uint64_t size, uint64_t tag) {
  if (!handle_) return failed_precondition("copy on an empty stream");
  if (!dst.valid()) return invalid_argument(device_->id() + ": copy to an empty buffer");
  if (!src && size > 0) return invalid_argument(device_->id() + ": copy from a null host pointer");
  if (&dst.device().plugin() != &device_->plugin())
    return invalid_argument(device_->id() + ": copy to a buffer of " + dst.device().id() +
                            ", which another plugin owns");
  hal_copy_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.src_host = src ? src : "";
  a.dst_buffer = dst.handle();
  a.dst_offset = dst_offset;
  a.size_bytes = size;
  a.tag = tag;
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_copy(&a), device_->id() + ": copy host to " + dst.device().id());
}

Status Stream::copy_to_host(const Buffer& src, uint64_t src_offset, void* dst, uint64_t size,
                            uint64_t tag) {
  if (!handle_) return failed_precondition("copy on an empty stream");
  if (!src.valid()) return invalid_argument(device_->id() + ": copy from an empty buffer");
  if (!dst && size > 0) return invalid_argument(device_->id() + ": copy to a null host pointer");
  if (&src.device().plugin() != &device_->plugin())
    return invalid_argument(device_->id() + ": copy from a buffer of " + src.device().id() +
                            ", which another plugin owns");
  static char sink;
  hal_copy_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.src_buffer = src.handle();
  a.src_offset = src_offset;
  a.dst_host = dst ? dst : &sink;
  a.size_bytes = size;
  a.tag = tag;
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_copy(&a), device_->id() + ": copy " + src.device().id() + " to host");
}

Status Stream::copy(const Buffer& src, uint64_t src_offset, const Buffer& dst, uint64_t dst_offset,
                    uint64_t size, uint64_t tag) {
  if (!handle_) return failed_precondition("copy on an empty stream");
  if (!src.valid() || !dst.valid()) return invalid_argument(device_->id() + ": copy with an empty buffer");
  if (&src.device().plugin() != &dst.device().plugin() ||
      &src.device().plugin() != &device_->plugin())
    return copy_staged(src, src_offset, dst, dst_offset, size);
  hal_copy_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.src_buffer = src.handle();
  a.src_offset = src_offset;
  a.dst_buffer = dst.handle();
  a.dst_offset = dst_offset;
  a.size_bytes = size;
  a.tag = tag;
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_copy(&a),
                      device_->id() + ": copy " + src.device().id() + " to " + dst.device().id());
}

Status Stream::copy_staged(const Buffer& src, uint64_t src_offset, const Buffer& dst,
                           uint64_t dst_offset, uint64_t size) {
  // Validate now so bad arguments fail the call, as for every enqueue.
  if (src_offset > src.size() || size > src.size() - src_offset)
    return invalid_argument(device_->id() + ": copy of " + std::to_string(size) +
                            " bytes from offset " + std::to_string(src_offset) + " overruns the " +
                            std::to_string(src.size()) + "-byte buffer of " + src.device().id());
  if (dst_offset > dst.size() || size > dst.size() - dst_offset)
    return invalid_argument(device_->id() + ": copy of " + std::to_string(size) + " bytes to offset " +
                            std::to_string(dst_offset) + " overruns the " +
                            std::to_string(dst.size()) + "-byte buffer of " + dst.device().id());
  const Buffer* s = &src;
  const Buffer* d = &dst;
  hal_stream* self = handle_;
  return enqueue_host_func([s, d, src_offset, dst_offset, size, self] {
    auto fail = [&](const Status& st) {
      deferred_errors().add(self, st.with_context("staged copy " + s->device().id() + " to " +
                                                  d->device().id()));
    };
    std::vector<char> staging;
    try {
      staging.resize(size);
    } catch (...) {
      fail(out_of_memory("no host memory for " + format_bytes(size) + " of staging"));
      return;
    }
    auto from = s->device().create_stream();
    if (!from.ok()) return fail(from.status());
    Status st = from->copy_to_host(*s, src_offset, staging.data(), size);
    if (st.ok()) st = from->synchronize();
    if (!st.ok()) return fail(st);
    auto to = d->device().create_stream();
    if (!to.ok()) return fail(to.status());
    st = to->copy_from_host(staging.data(), *d, dst_offset, size);
    if (st.ok()) st = to->synchronize();
    if (!st.ok()) return fail(st);
  });
}

Status Stream::fill(const Buffer& dst, uint64_t offset, uint64_t size, uint64_t pattern,
                    uint32_t pattern_size, uint64_t tag) {
  if (!handle_) return failed_precondition("fill on an empty stream");
  if (!dst.valid()) return invalid_argument(device_->id() + ": fill of an empty buffer");
  if (&dst.device() != device_)
    return invalid_argument(device_->id() + ": fill of a buffer of " + dst.device().id());
  hal_fill_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.buffer = dst.handle();
  a.offset = offset;
  a.size_bytes = size;
  for (int i = 0; i < 8; ++i) a.pattern[i] = uint8_t(pattern >> (8 * i));  // little-endian
  a.pattern_size = pattern_size;
  a.tag = tag;
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_fill(&a), device_->id() + ": fill");
}

Status Stream::dispatch(const OpDescriptor& op, uint64_t tag) {
  if (!handle_) return failed_precondition("dispatch on an empty stream");
  for (int i = 0; i < op.num_inputs && i < kMaxOpInputs; ++i) {
    const Buffer* b = op.inputs[i].buffer;
    if (!b || !b->valid())
      return invalid_argument(device_->id() + ": " + std::string(op_kind_name(op.kind)) + ": input " +
                              std::to_string(i) + " has no buffer");
    if (&b->device() != device_)
      return invalid_argument(device_->id() + ": " + std::string(op_kind_name(op.kind)) + ": input " +
                              std::to_string(i) + " lives on " + b->device().id());
  }
  if (!op.output.buffer || !op.output.buffer->valid())
    return invalid_argument(device_->id() + ": " + std::string(op_kind_name(op.kind)) +
                            ": output has no buffer");
  if (&op.output.buffer->device() != device_)
    return invalid_argument(device_->id() + ": " + std::string(op_kind_name(op.kind)) +
                            ": output lives on " + op.output.buffer->device().id());
  detail::COp c(op);
  hal_dispatch_args a{};
  a.struct_size = sizeof(a);
  a.stream = handle_;
  a.op = &c.desc;
  a.tag = tag;
  const auto& p = device_->plugin();
  hal_error* e = p.api->stream_dispatch(&a);
  if (!e) return ok_status();
  return p.take_error(e, device_->id());
}

Status Stream::record(Event& event) {
  if (!handle_ || !event.valid()) return failed_precondition("record with an empty stream or event");
  if (&event.device().plugin() != &device_->plugin())
    return invalid_argument(device_->id() + ": record of an event of " + event.device().id() +
                            " (another plugin): create the event on the stream's device");
  const auto& p = device_->plugin();
  return p.take_error(p.api->stream_record_event(handle_, event.handle()), device_->id() + ": record event");
}

Status Stream::wait(const Event& event) {
  if (!handle_ || !event.valid()) return failed_precondition("wait with an empty stream or event");
  const auto& p = device_->plugin();
  if (&event.device().plugin() == &p && HAL_PLUGIN_HAS(p, stream_wait_event)) {
    hal_error* e = p.api->stream_wait_event(handle_, event.handle());
    if (!e) return ok_status();
    Status s = p.take_error(e, device_->id() + ": wait for event of " + event.device().id());
    if (s.code() != StatusCode::kUnimplemented) return s;
  }
  const Event* ev = &event;
  return enqueue_host_func([ev] { ev->synchronize().ignore(); });
}

Status Stream::enqueue_host_func(std::function<void()> fn) {
  if (!handle_) return failed_precondition("host function on an empty stream");
  const auto& p = device_->plugin();
  if (!HAL_PLUGIN_HAS(p, stream_enqueue_host_func))
    return unimplemented(device_->id() + ": plugin " + p.name +
                         " cannot run host functions in stream order (needed for cross-plugin "
                         "waits and staged copies)");
  auto* box = new HostFuncBox{std::move(fn)};
  hal_error* e = p.api->stream_enqueue_host_func(handle_, &run_host_func, box);
  if (e) {
    delete box;
    return p.take_error(e, device_->id() + ": enqueue host function");
  }
  return ok_status();
}

Status Stream::synchronize() {
  if (!handle_) return failed_precondition("synchronize of an empty stream");
  const auto& p = device_->plugin();
  Status s = p.take_error(p.api->stream_synchronize(handle_), device_->id());
  Status deferred = deferred_errors().take(handle_);
  if (s.ok() && !deferred.ok()) return deferred.with_context(device_->id());
  return s;
}

std::vector<CommandRecord> Stream::take_records() {
  std::vector<CommandRecord> out;
  if (!handle_) return out;
  const auto& p = device_->plugin();
  std::vector<hal_command_record> buf(1024);
  for (;;) {
    size_t n = 0;
    for (auto& r : buf) {
      r = hal_command_record{};
      r.struct_size = sizeof(r);
    }
    Status s = p.take_error(
        p.api->stream_take_records(handle_, buf.data(), sizeof(hal_command_record), buf.size(), &n), "");
    if (!s.ok()) break;
    for (size_t i = 0; i < n; ++i) {
      const hal_command_record& r = buf[i];
      CommandRecord c;
      c.tag = r.tag;
      c.command = CommandKind(r.command);
      c.op = OpKind(r.op);
      c.start_ns = r.start_ns;
      c.end_ns = r.end_ns;
      c.flops = r.flops;
      c.bytes_read = r.bytes_read;
      c.bytes_written = r.bytes_written;
      c.sram_bytes_read = r.sram_bytes_read;
      c.sram_bytes_written = r.sram_bytes_written;
      c.link_bytes = r.link_bytes;
      c.bound = BoundBy(r.bound);
      detail::read_collective_fields(r, &c);
      if (HAL_ABI_HAS_FIELD(hal_command_record, node, r.struct_size)) {
        c.group = r.group;
        c.node = r.node;
      }
      out.push_back(c);
    }
    if (n < buf.size()) break;
  }
  return out;
}

}  // namespace hal

// backends/template: a minimal HAL backend plugin to copy when bringing up a new device.
//
// It presents one device, "tmpl:0", that computes on the host, and implements four ops
// in f32: add, mul, scale and matmul. It is written the way a real backend is: through
// the C++ plugin adapter (hal/plugin_adapter.h), which turns these classes into the C
// table of hal/plugin_abi.h, and with the plugin kit's helpers for the parts every
// host-driven backend shares (hal/plugin/host_queue_stream.h,
// hal/plugin/memory_accountant.h).
// It passes the conformance suite for what it declares: `halctl cts --plugin
// <this library>`. README.md walks through adapting it.
//
// Where to put your device's code is marked "YOUR DEVICE:".
//
// Threading: the host may call any entry from any thread (plugin_abi.h, THREADING).
// Streams serialise their own work on a HostQueueStream's worker; the memory accountant
// is thread-safe; device info is immutable after construction.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "hal/plugin/host_queue_stream.h"
#include "hal/plugin/memory_accountant.h"
#include "hal/plugin_adapter.h"

namespace tmpl {
namespace {

using hal::CommandKind;
using hal::CommandRecord;
using hal::DType;
using hal::MemoryKind;
using hal::OpKind;
using hal::OpSpec;
using hal::Result;
using hal::Status;
using hal::TensorDesc;
using hal::plugin::BufferImpl;
using hal::plugin::CopyCall;
using hal::plugin::DeviceImpl;
using hal::plugin::EventImpl;
using hal::plugin::FillCall;
using hal::plugin::HostEvent;
using hal::plugin::HostQueueStream;
using hal::plugin::MemoryAccountant;
using hal::plugin::OpCall;
using hal::plugin::StreamImpl;

// The device clock. Timestamps of events and command records are in this clock (ns).
// YOUR DEVICE: read the device's own timer (or a simulated clock) here.
uint64_t device_time_ns() { return hal::plugin::steady_clock_ns(); }

// ---- memory ------------------------------------------------------------------------

// One allocation. The adapter deletes it when the host frees the buffer, and the host
// only does that after the work using it finished, so the destructor may free at once.
class TemplateBuffer : public BufferImpl {
 public:
  TemplateBuffer(DeviceImpl* device, uint64_t size, MemoryKind kind, void* data,
                 MemoryAccountant* accountant)
      : BufferImpl(device, size, kind), data_(data), accountant_(accountant) {}
  ~TemplateBuffer() override {
    std::free(data_);
    accountant_->release(size());  // statistics must return to zero when all is freed
  }
  // Every memory kind of this device is host memory, so all of it maps. YOUR DEVICE:
  // return hal::failed_precondition(...) for device memory the host cannot address.
  Result<void*> map() override { return data_; }
  char* bytes() const { return static_cast<char*>(data_); }

 private:
  void* data_;
  MemoryAccountant* accountant_;
};

char* address(BufferImpl* b, uint64_t offset) {
  return static_cast<TemplateBuffer*>(b)->bytes() + offset;
}

// ---- kernels -----------------------------------------------------------------------
// Plain loops over strided views: the adapter has validated every op (shapes, dtypes,
// bounds) before dispatch, so kernels need no checks. YOUR DEVICE: launch your kernels
// here instead; keep the strided-view semantics of hal/op.h (strides in elements, 0
// broadcasts) or decline such views in supports().

// Calls fn(index) for every index of `t`'s shape in row-major order.
template <typename Fn>
void for_each_index(const TensorDesc& t, Fn&& fn) {
  if (t.numel() <= 0) return;
  int64_t index[hal::kMaxRank] = {};
  for (;;) {
    fn(static_cast<const int64_t*>(index));
    int d = t.shape.rank - 1;
    for (; d >= 0; --d) {
      if (++index[d] < t.shape.dims[d]) break;
      index[d] = 0;
    }
    if (d < 0) return;
  }
}

// The element of `t` (rank r) at output index `out` (rank out_rank), broadcasting
// numpy-style: dims are right-aligned and size-1 dims repeat.
float& element(char* base, const TensorDesc& t, const int64_t* out, int out_rank) {
  int64_t offset = 0;
  for (int i = 0; i < t.shape.rank; ++i) {
    const int64_t at = t.shape.dims[i] == 1 ? 0 : out[out_rank - t.shape.rank + i];
    offset += at * t.strides[i];
  }
  return reinterpret_cast<float*>(base)[offset];
}

void elementwise(const OpCall& op) {
  const TensorDesc& o = op.output.desc;
  char* out = address(op.output.buffer, op.output.offset_bytes);
  char* a = address(op.inputs[0].buffer, op.inputs[0].offset_bytes);
  char* b = op.num_inputs > 1 ? address(op.inputs[1].buffer, op.inputs[1].offset_bytes) : nullptr;
  const int r = o.shape.rank;
  for_each_index(o, [&](const int64_t* i) {
    const float x = element(a, op.inputs[0].desc, i, r);
    float y = 0;
    switch (op.kind) {
      case OpKind::kAdd:
        y = x + element(b, op.inputs[1].desc, i, r);
        break;
      case OpKind::kMul:
        y = x * element(b, op.inputs[1].desc, i, r);
        break;
      default:
        y = op.attrs.alpha * x + op.attrs.beta;
        break;  // kScale
    }
    element(out, o, i, r) = y;
  });
}

// out[.., m, n] = alpha * sum_k A[.., m, k] B[.., k, n] + bias[n], with optional
// transposes and batch dims that broadcast.
void matmul(const OpCall& op) {
  const TensorDesc& a = op.inputs[0].desc;
  const TensorDesc& b = op.inputs[1].desc;
  const TensorDesc& o = op.output.desc;
  char* pa = address(op.inputs[0].buffer, op.inputs[0].offset_bytes);
  char* pb = address(op.inputs[1].buffer, op.inputs[1].offset_bytes);
  char* po = address(op.output.buffer, op.output.offset_bytes);
  const float* bias =
      op.num_inputs == 3
          ? reinterpret_cast<const float*>(address(op.inputs[2].buffer, op.inputs[2].offset_bytes))
          : nullptr;
  const int64_t bias_stride = bias ? op.inputs[2].desc.strides[0] : 0;
  const int r = o.shape.rank, ra = a.shape.rank, rb = b.shape.rank;
  const int64_t k_dim = op.attrs.transpose_a ? a.shape.dims[ra - 2] : a.shape.dims[ra - 1];
  // Strides of A along (m, k) and B along (k, n), transposes folded in.
  const int64_t am = op.attrs.transpose_a ? a.strides[ra - 1] : a.strides[ra - 2];
  const int64_t ak = op.attrs.transpose_a ? a.strides[ra - 2] : a.strides[ra - 1];
  const int64_t bk = op.attrs.transpose_b ? b.strides[rb - 1] : b.strides[rb - 2];
  const int64_t bn = op.attrs.transpose_b ? b.strides[rb - 2] : b.strides[rb - 1];
  for_each_index(o, [&](const int64_t* i) {
    // Batch offsets of A and B for this output element (broadcast over batch dims).
    int64_t oa = 0, ob = 0;
    for (int d = 0; d < ra - 2; ++d)
      if (a.shape.dims[d] != 1) oa += i[r - 2 - (ra - 2) + d] * a.strides[d];
    for (int d = 0; d < rb - 2; ++d)
      if (b.shape.dims[d] != 1) ob += i[r - 2 - (rb - 2) + d] * b.strides[d];
    const float* ra_ptr = reinterpret_cast<const float*>(pa) + oa + i[r - 2] * am;
    const float* rb_ptr = reinterpret_cast<const float*>(pb) + ob + i[r - 1] * bn;
    double sum = 0;  // double keeps the template's results close to the reference
    for (int64_t k = 0; k < k_dim; ++k) sum += double(ra_ptr[k * ak]) * double(rb_ptr[k * bk]);
    double v = double(op.attrs.alpha) * sum;
    if (bias) v += bias[i[r - 1] * bias_stride];
    element(po, o, i, r) = float(v);
  });
}

// ---- streams -----------------------------------------------------------------------

// An in-order queue: the kit's HostQueueStream runs every command on a worker thread in
// enqueue order (each enqueue returns at once), skips the commands after a failed one
// until synchronize() reports it, and implements event records and waits, host functions
// (the HAL orders work across plugins with them) and the record log. Events are stamped
// with device_time_ns() (override event_time_ns to change that). YOUR DEVICE: submit to
// your hardware queue instead, and complete events from its completion interrupts or
// polling.
class TemplateStream : public HostQueueStream {
 public:
  explicit TemplateStream(uint32_t flags) : HostQueueStream(flags) {}
  ~TemplateStream() override { drain(); }  // destruction waits for the work using `this`

  Status copy(const CopyCall& c) override {
    enqueue([this, c]() -> Status {
      const uint64_t start = device_time_ns();
      const void* src = c.src_host ? c.src_host : address(c.src_buffer, c.src_offset);
      void* dst = c.dst_host ? c.dst_host : address(c.dst_buffer, c.dst_offset);
      if (c.size_bytes > 0) std::memmove(dst, src, c.size_bytes);
      record(c.tag, c.direction, OpKind::kInvalid, start, 0, c.src_buffer ? c.size_bytes : 0,
             c.dst_buffer ? c.size_bytes : 0);
      return hal::ok_status();
    });
    return hal::ok_status();
  }

  Status fill(const FillCall& f) override {
    enqueue([this, f]() -> Status {
      const uint64_t start = device_time_ns();
      hal::plugin::write_fill_pattern(address(f.buffer, f.offset), f);
      record(f.tag, CommandKind::kFill, OpKind::kInvalid, start, 0, 0, f.size_bytes);
      return hal::ok_status();
    });
    return hal::ok_status();
  }

  Status dispatch(const OpCall& op, uint64_t tag) override {
    enqueue([this, op, tag]() -> Status {
      const uint64_t start = device_time_ns();
      if (op.kind == OpKind::kMatmul) {
        matmul(op);
      } else {
        elementwise(op);
      }
      // Accounting: FLOPs and the minimum device-memory traffic of the op.
      const hal::OpCost cost = hal::analytic_cost(op.spec());
      record(tag, CommandKind::kOp, op.kind, start, cost.flops, cost.bytes_read,
             cost.bytes_written);
      return hal::ok_status();
    });
    return hal::ok_status();
  }

 private:
  void record(uint64_t tag, CommandKind kind, OpKind op, uint64_t start, double flops,
              uint64_t bytes_read, uint64_t bytes_written) {
    if (!records().enabled()) return;
    CommandRecord r;
    r.tag = tag;
    r.command = kind;
    r.op = op;
    r.start_ns = start;
    r.end_ns = device_time_ns();
    r.flops = flops;
    r.bytes_read = bytes_read;
    r.bytes_written = bytes_written;
    records().add(r);
  }
};

// ---- the device --------------------------------------------------------------------

// YOUR DEVICE: real figures, each with a "source.<field>" property saying where it came
// from (a datasheet, a measurement). The scheduler's cost model reads only these.
hal::DeviceInfo describe_device() {
  hal::DeviceInfo info;
  info.id_prefix = "tmpl";  // devices are tmpl:0, tmpl:1, ...
  info.kind = hal::DeviceKind::kOther;
  info.vendor = "Example";
  info.name = "Template device (host memory, reference loops)";
  info.memory_kind = "host DRAM";
  info.memory_bytes = uint64_t(1) << 30;  // the capacity this device enforces
  info.memory_bandwidth_bytes_per_s = 5e9;
  info.peak_flops[DType::kF32] = 1e9;
  info.launch_overhead_s = 5e-6;
  hal::LinkInfo host;  // the first link is the one to the host
  host.peer_index = -1;
  host.kind = "memory-bus";
  host.bandwidth_bytes_per_s = 5e9;
  host.latency_s = 1e-6;
  info.links.push_back(host);
  info.properties.emplace_back("source", "illustrative figures of the template backend");
  info.properties.emplace_back("source.memory_bytes", "chosen: 1 GiB enforced by the plugin");
  return info;
}

class TemplateDevice : public DeviceImpl {
 public:
  TemplateDevice() : info_(describe_device()), memory_(info_.memory_bytes) {}

  const hal::DeviceInfo& info() const override { return info_; }

  // What dispatch accepts. The CTS runs exactly the cases this says yes to and reports
  // the rest as skipped, so be precise: add, mul, scale and matmul, all tensors f32.
  bool supports(const OpSpec& spec) const override {
    switch (spec.kind) {
      case OpKind::kAdd:
      case OpKind::kMul:
      case OpKind::kScale:
      case OpKind::kMatmul:
        break;
      default:
        return false;
    }
    for (int i = 0; i < spec.num_inputs; ++i)
      if (spec.inputs[i].dtype != DType::kF32) return false;
    return spec.output.dtype == DType::kF32;
  }

  Result<std::unique_ptr<BufferImpl>> allocate(uint64_t size, MemoryKind kind,
                                               uint64_t alignment) override {
    // Virtual buffers (sizes without storage, for planning) are optional; say so.
    if (kind == MemoryKind::kVirtual)
      return hal::unimplemented("the template device has no virtual (timing-only) memory");
    // Capacity first, so a too-large request is a clean out-of-memory status.
    HAL_RETURN_IF_ERROR(memory_.reserve(size));
    const uint64_t align = std::max<uint64_t>(alignment, 64);  // at least 64 (plugin_abi.h)
    void* data =
        std::aligned_alloc(align, std::max<uint64_t>((size + align - 1) / align * align, align));
    if (!data) {
      memory_.release(size);
      return hal::out_of_memory("the host refused " + std::to_string(size) + " bytes");
    }
    return std::unique_ptr<BufferImpl>(new TemplateBuffer(this, size, kind, data, &memory_));
  }

  // New objects go to the adapter as unique_ptrs: it owns them behind the C handles.
  Result<std::unique_ptr<StreamImpl>> create_stream(uint32_t flags) override {
    return std::unique_ptr<StreamImpl>(new TemplateStream(flags));
  }
  Result<std::unique_ptr<EventImpl>> create_event() override {
    return std::unique_ptr<EventImpl>(new HostEvent());
  }
  hal::MemoryStats memory_stats() const override { return memory_.stats(); }
  // telemetry() is optional: the default reports none.

 private:
  hal::DeviceInfo info_;
  MemoryAccountant memory_;
};

class TemplatePlugin : public hal::plugin::PluginImpl {
 public:
  uint32_t device_count() const override { return 1; }
  DeviceImpl* device(uint32_t) override { return &device_; }

 private:
  TemplateDevice device_;
};

// Called once when the host loads the plugin. Options arrive from the host
// (PlatformOptions::plugin_options, `halctl --plugin-option template.KEY=VALUE`); an
// error here makes the host refuse the plugin with this message.
Result<std::unique_ptr<hal::plugin::PluginImpl>> create_template_plugin(
    const hal::plugin::PluginContext& context) {
  if (!context.options.empty())
    return hal::invalid_argument("the template plugin takes no options (got '" +
                                 context.options.begin()->first + "')");
  return std::unique_ptr<hal::plugin::PluginImpl>(new TemplatePlugin());
}

}  // namespace
}  // namespace tmpl

// The one exported symbol. The name ("template") must be unique among loaded plugins.
HAL_DEFINE_PLUGIN("template", "0.1.0", tmpl::create_template_plugin)

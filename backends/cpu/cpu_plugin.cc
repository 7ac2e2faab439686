// The CPU backend plugin: one device (cpu:0) whose memory is host memory, streams that
// are real asynchronous queues (one worker thread each), and kernels parallel with
// oneTBB and OpenBLAS. Exported through the C ABI with the plugin adapter, exactly as
// an out-of-tree backend would be.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

#include <sys/mman.h>
#include <unistd.h>

#include "cpu_channel.h"
#include "cpu_device_info.h"
#include "cpu_executable.h"
#include "cpu_kernels.h"
#include "cpu_threading.h"
#include "cpu_weight_cache.h"
#include "hal/plugin/host_queue_stream.h"
#include "hal/plugin/memory_accountant.h"
#include "hal/plugin/node_sequence.h"
#include "hal/plugin_adapter.h"

namespace hal::cpu {
namespace {

using plugin::BufferImpl;
using plugin::CopyCall;
using plugin::DeviceImpl;
using plugin::EventImpl;
using plugin::FillCall;
using plugin::HostEvent;
using plugin::HostQueueStream;
using plugin::MemoryAccountant;
using plugin::OpCall;
using plugin::steady_clock_ns;
using plugin::StreamImpl;

class CpuDevice;

class CpuBuffer : public BufferImpl {
 public:
  CpuBuffer(DeviceImpl* device, uint64_t size, MemoryKind kind, void* data,
            MemoryAccountant* accountant)
      : BufferImpl(device, size, kind), data_(data), accountant_(accountant) {
    weight_cache_track(data_, size, accountant_);
  }
  ~CpuBuffer() override {
    weight_cache_untrack(data_);
    std::free(data_);
    accountant_->release(size());
  }
  // The host may now write the bytes at any time, unseen: no weight copies of them.
  Result<void*> map() override {
    if (kind() == MemoryKind::kVirtual)
      return failed_precondition("a virtual buffer has no storage to map");
    weight_cache_mapped(data_);
    return data_;
  }
  char* data() const { return static_cast<char*>(data_); }

 private:
  void* data_;
  MemoryAccountant* accountant_;
};

char* ptr_of(BufferImpl* b, uint64_t offset) { return static_cast<CpuBuffer*>(b)->data() + offset; }

// Executions (cpu_executable.h): the program on the worker, records per fused group.
Status execute_on_worker(const plugin::ExecuteCall& call, uint64_t tag, plugin::RecordLog& log) {
  auto data = [](BufferImpl* b) -> char* {
    return b && b->kind() != MemoryKind::kVirtual ? static_cast<CpuBuffer*>(b)->data() : nullptr;
  };
  std::vector<CommandRecord> records;
  const auto& exe = static_cast<const CpuExecutable&>(*call.executable);
  Status s = exe.run(call, data, tag, log.enabled() ? &records : nullptr);
  rest_threads();  // the host waits for this result; give it a core
  // What the execution may have written: its states and bound intermediates (outputs).
  const GraphView& view = exe.view();
  for (size_t v = 0; v < call.bindings.size() && v < view.values.size(); ++v) {
    const GraphValueKind k = view.values[v].kind;
    if (char* p = data(call.bindings[v].buffer);
        p && (k == GraphValueKind::kState || k == GraphValueKind::kIntermediate))
      weight_cache_written(p + call.bindings[v].offset_bytes, view.values[v].desc.extent_bytes());
  }
  HAL_RETURN_IF_ERROR(s);
  for (const CommandRecord& r : records) log.add(r);
  return ok_status();
}

// The kit's host-queue stream runs the work in order on one worker thread and handles
// events, host functions and records; this class adds the CPU's copies, fills and ops.
class CpuStream : public HostQueueStream {
 public:
  explicit CpuStream(uint32_t flags) : HostQueueStream(flags) {
    enqueue([]() -> Status {  // the worker's thread-locals, before any command's record
      prepare_kernel_thread();
      return ok_status();
    });
  }
  ~CpuStream() override { drain(); }  // the queued work may still call this class

  Status copy(const CopyCall& c) override {
    const bool virt = (c.src_buffer && c.src_buffer->kind() == MemoryKind::kVirtual) ||
                      (c.dst_buffer && c.dst_buffer->kind() == MemoryKind::kVirtual);
    enqueue([this, c, virt]() -> Status {
      const uint64_t t0 = steady_clock_ns();
      if (!virt && c.size_bytes > 0) {
        const void* src = c.src_host ? c.src_host : ptr_of(c.src_buffer, c.src_offset);
        void* dst = c.dst_host ? c.dst_host : ptr_of(c.dst_buffer, c.dst_offset);
        std::memmove(dst, src, c.size_bytes);
        if (c.dst_buffer) weight_cache_written(dst, c.size_bytes);
      }
      CommandRecord r;
      r.tag = c.tag;
      r.command = c.direction;
      r.start_ns = t0;
      r.end_ns = steady_clock_ns();
      r.bytes_read = c.src_buffer ? c.size_bytes : 0;
      r.bytes_written = c.dst_buffer ? c.size_bytes : 0;
      r.link_bytes = (c.src_host || c.dst_host) ? c.size_bytes : 0;
      r.bound = BoundBy::kMemory;
      records().add(r);
      return ok_status();
    });
    return ok_status();
  }

  Status fill(const FillCall& f) override {
    enqueue([this, f]() -> Status {
      const uint64_t t0 = steady_clock_ns();
      if (f.buffer->kind() != MemoryKind::kVirtual) {
        plugin::write_fill_pattern(ptr_of(f.buffer, f.offset), f);
        weight_cache_written(ptr_of(f.buffer, f.offset), f.size_bytes);
      }
      CommandRecord r;
      r.tag = f.tag;
      r.command = CommandKind::kFill;
      r.start_ns = t0;
      r.end_ns = steady_clock_ns();
      r.bytes_written = f.size_bytes;
      r.bound = BoundBy::kMemory;
      records().add(r);
      return ok_status();
    });
    return ok_status();
  }

  Status dispatch(const OpCall& op, uint64_t tag) override {
    bool virt = op.output.buffer->kind() == MemoryKind::kVirtual;
    for (int i = 0; i < op.num_inputs; ++i)
      virt |= op.inputs[i].buffer->kind() == MemoryKind::kVirtual;
    if (!virt) prepare_threads();  // the worker threads wake while the op waits its turn
    enqueue([this, op, tag, virt]() -> Status {
      const OpSpec spec = op.spec();
      const uint64_t t0 = steady_clock_ns();
      if (!virt) {
        const void* inputs[kMaxOpInputs] = {};
        for (int i = 0; i < op.num_inputs; ++i)
          inputs[i] = ptr_of(op.inputs[i].buffer, op.inputs[i].offset_bytes);
        char* out = ptr_of(op.output.buffer, op.output.offset_bytes);
        Status s = run_op(spec, inputs, out);
        weight_cache_written(out, spec.output.extent_bytes());
        if (!s.ok()) return s.with_command_tag(tag);  // names the failed op to the host
      }
      if (records().enabled()) {
        const OpCost cost = analytic_cost(spec);
        CommandRecord r;
        r.tag = tag;
        r.command = CommandKind::kOp;
        r.op = op.kind;
        r.start_ns = t0;
        r.end_ns = steady_clock_ns();
        r.flops = cost.flops;
        r.bytes_read = cost.bytes_read;
        r.bytes_written = cost.bytes_written;
        records().add(r);
      }
      return ok_status();
    });
    return ok_status();
  }

  Status execute(const plugin::ExecuteCall& call, uint64_t tag) override {
    prepare_threads();  // the worker threads wake while the executable waits its turn
    enqueue([this, call, tag]() -> Status { return execute_on_worker(call, tag, records()); });
    return ok_status();
  }
  Status collective(const plugin::CollectiveCall& call) override {
    enqueue([this, call]() -> Status {
      Status s = run_cpu_collective(call, records());
      return s.ok() ? s : s.with_command_tag(call.tag);  // names the failed node to the host
    });
    return ok_status();
  }
};

// Maps the pages of [p, p + bytes) now, as a GPU's allocation is resident memory, so the
// first op to write a KV cache or an activation arena does not take the page faults
// (traced: the first 8-token prefill's KV-cache writes ran at ~1.5 GB/s, its first
// residual add took 5x the later ones). The faults are taken anyway at first touch; here
// in one batch. Kernels without MADV_POPULATE_WRITE (before Linux 5.14) skip it.
void populate(void* p, uint64_t bytes) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(p) + bytes + page - 1) / page * page;
  (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#else
  (void)p;
  (void)bytes;
#endif
}

class CpuDevice : public DeviceImpl {
 public:
  CpuDevice() : info_(describe_cpu()), memory_(info_.memory_bytes) {}

  const DeviceInfo& info() const override { return info_; }
  bool supports(const OpSpec& spec) const override { return kernel_supports(spec); }

  Result<std::unique_ptr<BufferImpl>> allocate(uint64_t size, MemoryKind kind,
                                               uint64_t alignment) override {
    if (kind == MemoryKind::kVirtual) {
      HAL_RETURN_IF_ERROR(memory_.reserve(size));
      return std::unique_ptr<BufferImpl>(new CpuBuffer(this, size, kind, nullptr, &memory_));
    }
    const uint64_t align = alignment > 64 ? alignment : 64;
    const uint64_t rounded = (size + align - 1) / align * align;
    if (rounded < size) return out_of_memory("allocation size overflows");
    HAL_RETURN_IF_ERROR(memory_.reserve(size));
    void* data = std::aligned_alloc(align, rounded == 0 ? align : rounded);
    if (!data) {
      memory_.release(size);
      return out_of_memory("the OS refused " + std::to_string(size) + " bytes");
    }
    populate(data, rounded);
    return std::unique_ptr<BufferImpl>(new CpuBuffer(this, size, kind, data, &memory_));
  }

  Result<std::unique_ptr<StreamImpl>> create_stream(uint32_t flags) override {
    // The compute threads start with the first stream, not inside the first op (where
    // starting them cost a model's first prefill ~1 ms: cpu_threading.h).
    static std::once_flag started;
    std::call_once(started, warm_up_threads);
    return std::unique_ptr<StreamImpl>(new CpuStream(flags));
  }
  Result<std::unique_ptr<EventImpl>> create_event() override {
    return std::unique_ptr<EventImpl>(new HostEvent());
  }
  MemoryStats memory_stats() const override { return memory_.stats(); }
  Result<std::unique_ptr<plugin::ChannelImpl>> create_channel(
      const plugin::ChannelConfig& config) override {
    return create_cpu_channel(this, config);
  }

  // Executables (cpu_executable.h): the runs of nodes the kernels support.
  Result<Partition> partition(const GraphView& view) const override {
    return plugin::partition_contiguous(view, [](size_t, const OpSpec& spec) {
      return kernel_supports(spec)
                 ? std::string()
                 : "cpu:0 has no kernel for " + std::string(op_kind_name(spec.kind)) + " with " +
                       std::string(dtype_name(spec.output.dtype)) + " output";
    });
  }
  Result<std::unique_ptr<plugin::ExecutableImpl>> compile(const GraphView& view,
                                                          const CompileOptions& options) override {
    if (!options.empty())
      return invalid_argument("cpu compiler: unknown option '" + options.begin()->first + "'");
    for (size_t n = 0; n < view.nodes.size(); ++n)
      if (!kernel_supports(view.node_spec(n)))
        return unimplemented("node '" + view.nodes[n].name + "' (" +
                             std::string(op_kind_name(view.nodes[n].op)) + ") has no CPU kernel")
            .with_node(int32_t(n));
    return std::unique_ptr<plugin::ExecutableImpl>(new CpuExecutable(view, info_));
  }
  Result<std::unique_ptr<plugin::ExecutableImpl>> deserialize(
      std::span<const uint8_t> payload) override {
    auto view = GraphView::decode(payload);
    if (!view.ok()) return failed_precondition(view.status().message());
    return compile(*view, {});
  }

 private:
  DeviceInfo info_;
  MemoryAccountant memory_;
};

class CpuPlugin : public plugin::PluginImpl {
 public:
  uint32_t device_count() const override { return 1; }
  DeviceImpl* device(uint32_t) override { return &device_; }

 private:
  CpuDevice device_;
};

Result<std::unique_ptr<plugin::PluginImpl>> create_cpu_plugin(const plugin::PluginContext&) {
  return std::unique_ptr<plugin::PluginImpl>(new CpuPlugin());
}

}  // namespace
}  // namespace hal::cpu

HAL_DEFINE_PLUGIN("cpu", "0.1.0", hal::cpu::create_cpu_plugin)

// backends/cuda/cuda_internal.h: the CUDA backend's implementation of the plugin classes
// (hal/plugin_adapter.h): devices, buffers, events and streams on the CUDA runtime.
//
// Design (what a reader needs before the code):
// - Devices. One per visible GPU (ordinal = plugin device index). Each entry point sets the
//   calling thread's current device (DeviceScope). A device-lost error (a context-corrupting
//   fault) marks the device lost; later calls fail fast with kDeviceLost naming the first
//   fault. Nothing aborts.
// - Memory. kDevice: stream-ordered allocation from a per-device memory pool
//   (cudaMallocFromPoolAsync on an internal allocation stream, synchronised before the buffer
//   is returned so any stream may use it; freed with cudaFreeAsync). Falls back to
//   cudaMalloc where pools are unsupported. kHostPinned/kHostVisible: cudaHostAlloc
//   (portable, mapped): page-locked, host-mappable, device-addressable. kVirtual: sizes and
//   accounting only. MemoryStats count device and virtual memory against the GPU's capacity;
//   host allocations are tracked separately (they do not use the GPU's memory).
// - Events. cudaEvent_t with timing. Timestamps are ns since the device's base event
//   (recorded when the device was opened), via cudaEventElapsedTime; the base moves forward
//   every ~10 s of device time so f32 milliseconds keep sub-microsecond resolution.
// - Streams: see CudaStream below (cuda_stream.cc), including host functions and failures.
//
// Threading: every class is thread-safe as plugin_abi.h requires; a stream serialises its
// enqueue calls with a mutex.
#pragma once

#include <cuda.h>  // driver API types for cuStreamWaitValue32 (resolved at run time)
#include <cuda_runtime_api.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cuda_blaslt.h"
#include "cuda_common.h"
#include "cuda_device_info.h"
#include "cuda_graph_reuse.h"
#include "cuda_kernels.h"
#include "hal/plugin/memory_accountant.h"
#include "hal/plugin_adapter.h"

namespace hal::cuda {

class CudaDevice;

// Options of the plugin (plugin_create options, or the environment).
struct CudaOptions {
  bool tf32 = false;                      // option compute_precision=tf32 or HAL_CUDA_TF32=1
  bool force_host_func_fallback = false;  // option host_functions=callback (testing)
};

using WaitValueFn = CUresult (*)(CUstream, CUdeviceptr, cuuint32_t, unsigned int);

class CudaBuffer : public plugin::BufferImpl {
 public:
  CudaBuffer(CudaDevice* device, uint64_t size, MemoryKind kind, void* ptr, void* base,
             bool pooled);
  ~CudaBuffer() override;
  Result<void*> map() override;
  // Address of byte `offset` (device-addressable for every kind but kVirtual).
  char* at(uint64_t offset) const { return static_cast<char*>(ptr_) + offset; }
  bool is_virtual() const { return kind() == MemoryKind::kVirtual; }
  bool is_host() const {
    return kind() == MemoryKind::kHostPinned || kind() == MemoryKind::kHostVisible;
  }

 private:
  void* ptr_;   // aligned start
  void* base_;  // what the allocator returned
  bool pooled_;
};

class CudaEvent : public plugin::EventImpl {
 public:
  explicit CudaEvent(CudaDevice* device);
  ~CudaEvent() override;
  Status synchronize() override;
  Result<bool> query() override;
  Result<uint64_t> timestamp_ns() override;

  // Records on `stream` of `device` (re-creating the CUDA event on that device if the event
  // was made on another one).
  Status record(CudaDevice* device, cudaStream_t stream);
  // The CUDA event of the latest record (null when never recorded), for waits.
  cudaEvent_t handle() const;

 private:
  CudaDevice* device_;
  mutable std::mutex mu_;
  cudaEvent_t event_ = nullptr;
  bool recorded_ = false;
  uint64_t generation_ = 0;
  std::optional<std::pair<uint64_t, uint64_t>> cached_;  // (generation, timestamp)
};

// Runs host functions of one stream on a thread of its own, in stream order, such that the
// functions may call CUDA (other streams, synchronisation, copies) and may block.
//
// Mechanism (why not cudaLaunchHostFunc alone): CUDA runs host callbacks on a driver thread
// that must not call CUDA, and that thread is shared by all streams, so a callback that
// blocks stalls every other stream's callbacks; the HAL's host functions do both (staged
// copies across plugins call CUDA; cross-plugin waits block). Instead, per host function:
//   1. an event is recorded on the stream (the point where the function may start),
//   2. the stream is made to wait, on the GPU, until a host-mapped 32-bit counter reaches
//      this function's sequence number (cuStreamWaitValue32; no CPU thread is held),
//   3. this runner's thread waits for the event, runs the function, then writes the
//      sequence number into the counter, releasing the stream.
// Nothing of CUDA's own blocks, so functions on different streams never wait for each
// other; a deadlock needs a cycle the caller made (a function waiting for later work of its
// own stream, which plugin_abi.h forbids).
// Fallback, when the driver offers no stream memory operations (probed when the device is
// opened): cudaLaunchHostFunc with a callback that hands the function to this thread and
// blocks until it finished. Functions may still call CUDA (this thread runs them), but a
// blocking function then delays other streams' host functions.
class HostTaskRunner {
 public:
  HostTaskRunner(CudaDevice* device, WaitValueFn wait_value);
  ~HostTaskRunner();  // the stream must have drained (the owner synchronises first)

  // Enqueues `fn` on `stream` behind its current work; later work of the stream waits for it.
  Status enqueue(cudaStream_t stream, std::function<void()> fn);
  cudaStream_t side_stream() const { return side_stream_; }  // for the functions' own copies

 private:
  struct Task {
    cudaEvent_t ready = nullptr;  // memory-op mechanism only
    std::function<void()> fn;
    uint32_t sequence = 0;
    // Fallback mechanism: the callback waits for `done`.
    std::mutex* done_mu = nullptr;
    std::condition_variable* done_cv = nullptr;
    bool* done = nullptr;
  };
  static void CUDART_CB callback(void* user);
  void run();
  cudaEvent_t take_event();
  void give_event(cudaEvent_t e);

  CudaDevice* device_;
  WaitValueFn wait_value_;
  uint32_t* counter_ = nullptr;     // pinned, mapped
  CUdeviceptr counter_device_ = 0;  // its device address
  uint32_t next_sequence_ = 0;
  cudaStream_t side_stream_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> tasks_;
  std::vector<cudaEvent_t> free_events_;
  bool stopping_ = false;
  std::thread thread_;
};

// A matmul plan cached per stream (cuda_matmul.cc).
struct MatmulPlan;
struct MatmulPlanCache {
  // Owned; raw pointers so that only cuda_matmul.cc, where MatmulPlan is complete,
  // instantiates their deletion (clear() and the destructor live there).
  std::unordered_map<std::string, MatmulPlan*> plans;
  MatmulPlanCache() = default;
  MatmulPlanCache(const MatmulPlanCache&) = delete;
  MatmulPlanCache& operator=(const MatmulPlanCache&) = delete;
  ~MatmulPlanCache();
  void clear();
};

class CudaStream : public plugin::StreamImpl {
 public:
  static Result<std::unique_ptr<CudaStream>> create(CudaDevice* device, uint32_t flags);
  ~CudaStream() override;

  Status copy(const plugin::CopyCall& call) override;
  Status fill(const plugin::FillCall& call) override;
  Status dispatch(const plugin::OpCall& op, uint64_t tag) override;
  Status record_event(plugin::EventImpl& event) override;
  Status wait_event(plugin::EventImpl& event) override;
  Status enqueue_host_func(hal_host_func fn, void* user_data) override;
  Status synchronize() override;
  size_t take_records(CommandRecord* out, size_t capacity) override;
#if HAL_CUDA_WITH_NCCL
  Status collective(const plugin::CollectiveCall& call) override;  // cuda_nccl.cc
#endif
  // One execution of a compiled unit (cuda_executable.cc): its nodes captured as a CUDA
  // graph per executable (its shape bucket), replayed or updated in place while the
  // parameters change (cuda_graph_reuse.h).
  Status execute(const plugin::ExecuteCall& call, uint64_t tag) override;

  cudaStream_t handle() const { return stream_; }
  CudaDevice* device() const { return device_; }
  ErrorRef error_ref() const { return ErrorRef{error_device_, error_mirror_device_}; }

  // For cuda_ops.cc / cuda_matmul.cc (called with mu_ held by dispatch).
  const BlasLt* blaslt() const;
  Result<cublasLtHandle_t> blaslt_handle();
  void* blaslt_workspace() const { return blaslt_workspace_; }
  uint64_t blaslt_workspace_bytes() const { return blaslt_workspace_bytes_; }
  MatmulPlanCache& plans() { return plans_; }
  // Stream-ordered scratch memory freed after the current command (attention splits).
  Result<void*> scratch(uint64_t bytes);
  // Whether a data-dependent failure may be pending on the device (cuda_ops.cc marks the
  // ops that can fail with mark_fallible()).
  void mark_fallible();

 private:
  explicit CudaStream(CudaDevice* device, uint32_t flags);
  Status init();

  struct PendingRecord {
    CommandRecord record;
    cudaEvent_t start = nullptr;
    cudaEvent_t end = nullptr;
    // An execution's fused-group records, each with its share of the measured span (the
    // kernels of a CUDA graph are not timed one by one).
    std::vector<std::pair<CommandRecord, double>> parts;
  };

  // True (and the error in host_error_) when an earlier failure is already known on the
  // host; then commands are skipped until synchronize.
  bool known_failed();
  // Polls the last fallible op without blocking: clears fallible_pending_ when it finished
  // cleanly, records its failure when it failed.
  void refresh_fallible();
  bool host_mirror_failed() const;
  Status mirror_status() const;
  void note_host_error(Status s);
  Status check_launch(cudaError_t e, const std::string& what);

  Status begin_command(PendingRecord* rec, CommandKind kind, uint64_t tag);
  void end_command(PendingRecord* rec);
  // A command that failed before anything was enqueued after its start event.
  void discard_command(PendingRecord* rec);
  cudaEvent_t take_timing_event();
  void collect_records();

  // Runs `work` on the runner after the stream's earlier work, and holds later work until
  // it finished. `work` runs only when no earlier command failed (else it counts as
  // skipped); `always` runs it regardless (host functions).
  Status host_task(std::function<Status()> work, bool always, const std::string& what);
  HostTaskRunner* runner();

  Status copy_impl(const plugin::CopyCall& c);

  CudaDevice* device_;
  const bool record_;
  cudaStream_t stream_ = nullptr;
  std::mutex mu_;  // serialises enqueue calls

  // Failure tracking (cuda_kernels.h ErrorSlot).
  ErrorSlot* error_device_ = nullptr;
  ErrorSlot* error_mirror_ = nullptr;         // pinned host memory
  ErrorSlot* error_mirror_device_ = nullptr;  // its device address
  bool fallible_pending_ = false;
  cudaEvent_t fallible_event_ = nullptr;
  std::mutex host_error_mu_;  // host_error_ is also written by the runner thread
  Status host_error_;
  std::atomic<uint64_t> skipped_{0};

  // Records.
  std::deque<PendingRecord> pending_;
  std::deque<CommandRecord> completed_;
  std::vector<cudaEvent_t> free_timing_events_;
  std::mutex records_mu_;

  // Host functions.
  std::unique_ptr<HostTaskRunner> runner_;

  // Matmul.
  cublasLtHandle_t blaslt_handle_ = nullptr;
  void* blaslt_workspace_ = nullptr;
  uint64_t blaslt_workspace_bytes_ = 0;
  MatmulPlanCache plans_;
  std::vector<void*> scratch_;  // freed (stream-ordered) after each dispatch

  // CUDA graphs of compiled units, by executable serial (cuda_executable.cc).
  GraphReuse graphs_;
  std::unordered_map<uint64_t, cudaGraphExec_t> graph_execs_;
  void destroy_graphs();
  // Replays, updates or captures and instantiates the graph of `executable` for launch
  // parameters `params` (a GraphReuse key), then launches it on the stream.
  Status launch_graph(const plugin::ExecutableImpl& executable, const plugin::ExecuteCall& call,
                      uint64_t params, uint64_t tag);
};

class CudaDevice : public plugin::DeviceImpl {
 public:
  static Result<std::unique_ptr<CudaDevice>> open(int ordinal, const std::vector<PeerView>& peers,
                                                  const CudaOptions& options,
                                                  const plugin::PluginContext& context);
  ~CudaDevice() override;

  const DeviceInfo& info() const override { return info_; }
  bool supports(const OpSpec& spec) const override;
  Result<std::unique_ptr<plugin::BufferImpl>> allocate(uint64_t size, MemoryKind kind,
                                                       uint64_t alignment) override;
  Result<std::unique_ptr<plugin::StreamImpl>> create_stream(uint32_t flags) override;
  Result<std::unique_ptr<plugin::EventImpl>> create_event() override;
  MemoryStats memory_stats() const override { return memory_->stats(); }
  Result<Telemetry> telemetry() const override;
#if HAL_CUDA_WITH_NCCL
  // cuda_nccl.cc: a member of an NCCL communicator.
  Result<std::unique_ptr<plugin::ChannelImpl>> create_channel(
      const plugin::ChannelConfig& config) override;
#endif
  // Executables (cuda_executable.cc): runs of supported nodes, run as CUDA graphs.
  Result<Partition> partition(const GraphView& view) const override;
  Result<std::unique_ptr<plugin::ExecutableImpl>> compile(const GraphView& view,
                                                          const CompileOptions& options) override;
  Result<std::unique_ptr<plugin::ExecutableImpl>> deserialize(
      std::span<const uint8_t> payload) override;

  int ordinal() const { return ordinal_; }
  int sm_count() const { return sm_count_; }
  const CudaOptions& options() const { return options_; }
  WaitValueFn wait_value() const { return wait_value_; }
  const std::string& host_func_mechanism() const { return host_func_mechanism_; }

  // Converts a CUDA error, marking the device lost for context-corrupting ones. When the
  // device is already lost, returns that (whatever `e`).
  Status check(cudaError_t e, const std::string& what);
  // kDeviceLost naming the first fault, when the device was lost.
  Status lost_status() const;
  bool lost() const { return lost_.load(std::memory_order_acquire); }

  // Device time of a completed event, ns since the device's base.
  Result<uint64_t> event_time_ns(cudaEvent_t event);

  void free_device_memory(void* base, bool pooled, uint64_t size);
  void free_host_memory(void* base, uint64_t size);
  void release_virtual(uint64_t size) { memory_->release(size); }

  // Stream-ordered scratch on `stream` (freed with free_scratch on the same stream).
  Result<void*> allocate_scratch(uint64_t bytes, cudaStream_t stream);
  void free_scratch(void* p, cudaStream_t stream);

 private:
  CudaDevice(int ordinal, CudaOptions options);
  Status init(const std::vector<PeerView>& peers, const plugin::PluginContext& context);
  void probe_host_func_mechanism(const plugin::PluginContext& context);

  int ordinal_;
  CudaOptions options_;
  DeviceInfo info_;
  int sm_count_ = 0;
  std::unique_ptr<plugin::MemoryAccountant> memory_;       // device and virtual memory
  std::unique_ptr<plugin::MemoryAccountant> host_memory_;  // pinned host memory
  cudaMemPool_t pool_ = nullptr;                           // null: cudaMalloc/cudaFree
  cudaStream_t alloc_stream_ = nullptr;
  std::mutex alloc_mu_;
  std::atomic<bool> lost_{false};
  mutable std::mutex lost_mu_;
  std::string lost_reason_;
  // Time base.
  std::mutex time_mu_;
  cudaEvent_t base_event_ = nullptr;
  double base_ms_ = 0;  // device time of base_event_ since the first base, in ms
  WaitValueFn wait_value_ = nullptr;
  std::string host_func_mechanism_;
  void* nvml_device_ = nullptr;
};

}  // namespace hal::cuda

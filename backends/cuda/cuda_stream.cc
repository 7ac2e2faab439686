// CUDA streams of the HAL: an in-order queue on a cudaStream_t (non-blocking), with host
// functions on a thread of their own (HostTaskRunner, cuda_internal.h), per-command
// records timed with CUDA events, and data-dependent failures.
//
// Failures and skipped commands (plugin_abi.h: after a failing command, later commands of
// the stream are skipped until synchronize reports the error):
// - Failures detected on the GPU (embedding ids, attention kv_lengths out of range) are
//   written by the kernel into the stream's ErrorSlot and its pinned host mirror.
// - Every kernel of ours checks the slot first and does nothing when it is set.
// - Copies and fills cannot check it themselves. While a failing op may still be in flight
//   ("fallible pending": from enqueueing such an op until the host has seen it finish), a
//   copy between device buffers becomes a kernel that checks the slot, a fill likewise, and
//   copies to or from the host run on the stream's host thread after checking the mirror.
//   Once the op is seen to have finished cleanly (polled without blocking at each enqueue),
//   copies take the direct path again; once it is seen to have failed, later commands are
//   skipped on the host until synchronize.
// - cuBLASLt matmuls cannot check it: a matmul enqueued while a failure is in flight still
//   runs (on device data only; its output is then unspecified, like every output of the
//   failed stream). Making it conditional would cost a host round trip after every attention
//   with kv_lengths (each decoding layer), so the exception is documented instead.
// Pageable host memory: copies to it run on the host thread (cudaMemcpyAsync into pageable
// memory would block the caller until the stream reached it); copies from it are staged by
// the driver and return at once.
#include <algorithm>
#include <chrono>
#include <cstring>

#include "cuda_internal.h"
#include "cuda_ops.h"

namespace hal::cuda {

// ---- HostTaskRunner -------------------------------------------------------------------

namespace {
struct CallbackBlock {
  class HostTaskRunner* runner;
  std::function<void()> fn;
};
}  // namespace

HostTaskRunner::HostTaskRunner(CudaDevice* device, WaitValueFn wait_value)
    : device_(device), wait_value_(wait_value) {
  DeviceScope scope(device_->ordinal());
  if (cudaHostAlloc(reinterpret_cast<void**>(&counter_), 64,
                    cudaHostAllocPortable | cudaHostAllocMapped) == cudaSuccess) {
    __atomic_store_n(counter_, 0u, __ATOMIC_SEQ_CST);
    void* dptr = nullptr;
    if (cudaHostGetDevicePointer(&dptr, counter_, 0) == cudaSuccess)
      counter_device_ = CUdeviceptr(dptr);
    else
      wait_value_ = nullptr;
  } else {
    counter_ = nullptr;
    wait_value_ = nullptr;
  }
  cudaGetLastError();
  if (cudaStreamCreateWithFlags(&side_stream_, cudaStreamNonBlocking) != cudaSuccess) {
    side_stream_ = nullptr;
    cudaGetLastError();
  }
  thread_ = std::thread([this] { run(); });
}

HostTaskRunner::~HostTaskRunner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
  DeviceScope scope(device_->ordinal());
  for (cudaEvent_t e : free_events_) cudaEventDestroy(e);
  if (side_stream_) cudaStreamDestroy(side_stream_);
  if (counter_) cudaFreeHost(counter_);
}

cudaEvent_t HostTaskRunner::take_event() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_events_.empty()) {
      cudaEvent_t e = free_events_.back();
      free_events_.pop_back();
      return e;
    }
  }
  cudaEvent_t e = nullptr;
  // Blocking sync: the thread sleeps while a stream is held (a gate may hold it for long).
  if (cudaEventCreateWithFlags(&e, cudaEventDisableTiming | cudaEventBlockingSync) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return e;
}

void HostTaskRunner::give_event(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(mu_);
  free_events_.push_back(e);
}

Status HostTaskRunner::enqueue(cudaStream_t stream, std::function<void()> fn) {
  if (wait_value_) {
    cudaEvent_t ready = take_event();
    if (!ready) return internal_error("cannot create an event for a host function");
    HAL_RETURN_IF_ERROR(device_->check(cudaEventRecord(ready, stream), "cudaEventRecord"));
    const uint32_t sequence = next_sequence_ + 1;
    const CUresult r = wait_value_(stream, counter_device_, sequence, CU_STREAM_WAIT_VALUE_GEQ);
    if (r != CUDA_SUCCESS) {
      give_event(ready);
      return internal_error("cuStreamWaitValue32 failed with CUresult " + std::to_string(int(r)));
    }
    next_sequence_ = sequence;
    {
      std::lock_guard<std::mutex> lock(mu_);
      Task t;
      t.ready = ready;
      t.fn = std::move(fn);
      t.sequence = sequence;
      tasks_.push_back(std::move(t));
    }
    cv_.notify_one();
    return ok_status();
  }
  auto* block = new CallbackBlock{this, std::move(fn)};
  const cudaError_t e = cudaLaunchHostFunc(stream, &HostTaskRunner::callback, block);
  if (e != cudaSuccess) {
    delete block;
    return device_->check(e, "cudaLaunchHostFunc");
  }
  return ok_status();
}

// Runs on CUDA's callback thread: hands the function to the runner and waits for it (the
// function may call CUDA; this thread must not).
void CUDART_CB HostTaskRunner::callback(void* user) {
  std::unique_ptr<CallbackBlock> block(static_cast<CallbackBlock*>(user));
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  HostTaskRunner* self = block->runner;
  {
    std::lock_guard<std::mutex> lock(self->mu_);
    Task t;
    t.fn = std::move(block->fn);
    t.done_mu = &m;
    t.done_cv = &cv;
    t.done = &done;
    self->tasks_.push_back(std::move(t));
  }
  self->cv_.notify_one();
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
}

void HostTaskRunner::run() {
  DeviceScope scope(device_->ordinal());
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      t = std::move(tasks_.front());
      tasks_.pop_front();
    }
    if (t.ready && cudaEventSynchronize(t.ready) != cudaSuccess) cudaGetLastError();
    try {
      if (t.fn) t.fn();
    } catch (...) {
      // Host functions report failures through their own state; never unwind here.
    }
    t.fn = nullptr;  // release captures before the stream moves on
    if (t.ready) {
      give_event(t.ready);
      __atomic_store_n(counter_, t.sequence, __ATOMIC_SEQ_CST);
    } else {
      std::lock_guard<std::mutex> lock(*t.done_mu);
      *t.done = true;
      t.done_cv->notify_all();
    }
  }
}

// ---- CudaStream -----------------------------------------------------------------------

CudaStream::CudaStream(CudaDevice* device, uint32_t flags)
    : device_(device), record_((flags & HAL_STREAM_FLAG_RECORD_COMMANDS) != 0) {}

Result<std::unique_ptr<CudaStream>> CudaStream::create(CudaDevice* device, uint32_t flags) {
  std::unique_ptr<CudaStream> s(new CudaStream(device, flags));
  HAL_RETURN_IF_ERROR(s->init());
  return s;
}

Status CudaStream::init() {
  DeviceScope scope(device_->ordinal());
  HAL_RETURN_IF_ERROR(device_->check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                                     "cudaStreamCreateWithFlags"));
  HAL_RETURN_IF_ERROR(
      device_->check(cudaMalloc(reinterpret_cast<void**>(&error_device_), sizeof(ErrorSlot)),
                     "allocating the stream's error slot"));
  HAL_RETURN_IF_ERROR(
      device_->check(cudaMemset(error_device_, 0, sizeof(ErrorSlot)), "cudaMemset"));
  HAL_RETURN_IF_ERROR(
      device_->check(cudaHostAlloc(reinterpret_cast<void**>(&error_mirror_), sizeof(ErrorSlot),
                                   cudaHostAllocPortable | cudaHostAllocMapped),
                     "allocating the stream's error mirror"));
  std::memset(static_cast<void*>(error_mirror_), 0, sizeof(ErrorSlot));
  void* mirror_dev = nullptr;
  HAL_RETURN_IF_ERROR(device_->check(cudaHostGetDevicePointer(&mirror_dev, error_mirror_, 0),
                                     "cudaHostGetDevicePointer"));
  error_mirror_device_ = static_cast<ErrorSlot*>(mirror_dev);
  HAL_RETURN_IF_ERROR(device_->check(
      cudaEventCreateWithFlags(&fallible_event_, cudaEventDisableTiming), "cudaEventCreate"));
  return ok_status();
}

CudaStream::~CudaStream() {
  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_->ordinal());
  if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess) cudaGetLastError();
  runner_.reset();
  {
    std::lock_guard<std::mutex> rl(records_mu_);
    for (PendingRecord& p : pending_) {
      cudaEventDestroy(p.start);
      cudaEventDestroy(p.end);
    }
    for (cudaEvent_t e : free_timing_events_) cudaEventDestroy(e);
  }
  plans_.clear();  // plans hold cuBLASLt descriptors; drop them before the handle
  if (blaslt_handle_) {
    if (auto lt = load_blaslt(); lt.ok()) (*lt)->destroy(blaslt_handle_);
  }
  if (blaslt_workspace_) device_->free_scratch(blaslt_workspace_, stream_);
  if (stream_ && cudaStreamSynchronize(stream_) != cudaSuccess) cudaGetLastError();
  if (error_device_) cudaFree(error_device_);
  if (error_mirror_) cudaFreeHost(error_mirror_);
  if (fallible_event_) cudaEventDestroy(fallible_event_);
  if (stream_) cudaStreamDestroy(stream_);
  cudaGetLastError();
}

HostTaskRunner* CudaStream::runner() {
  if (!runner_) runner_ = std::make_unique<HostTaskRunner>(device_, device_->wait_value());
  return runner_.get();
}

bool CudaStream::host_mirror_failed() const {
  return __atomic_load_n(&error_mirror_->code, __ATOMIC_ACQUIRE) != 0;
}

Status CudaStream::mirror_status() const {
  ErrorSlot m;
  std::memcpy(&m, const_cast<const ErrorSlot*>(error_mirror_), sizeof m);
  const std::string op(op_kind_name(OpKind(m.op)));
  if (OpKind(m.op) == OpKind::kEmbedding)
    return invalid_argument(op + ": id " + std::to_string(m.value) + " (at flat index " +
                            std::to_string(m.index) + " of the ids) is outside [0, " +
                            std::to_string(m.limit) + ")");
  if (OpKind(m.op) == OpKind::kAttention)
    return invalid_argument(op + ": kv_lengths[" + std::to_string(m.index) +
                            "] = " + std::to_string(m.value) + " is outside [0, " +
                            std::to_string(m.limit) + "]");
  return invalid_argument(op + ": value " + std::to_string(m.value) + " at index " +
                          std::to_string(m.index) + " is out of range");
}

void CudaStream::note_host_error(Status s) {
  std::lock_guard<std::mutex> lock(host_error_mu_);
  if (host_error_.ok()) host_error_ = std::move(s);
}

bool CudaStream::known_failed() {
  std::lock_guard<std::mutex> lock(host_error_mu_);
  return !host_error_.ok();
}

void CudaStream::refresh_fallible() {
  if (!fallible_pending_) return;
  const cudaError_t e = cudaEventQuery(fallible_event_);
  if (e == cudaErrorNotReady) return;
  fallible_pending_ = false;
  if (e != cudaSuccess) {
    note_host_error(device_->check(e, "cudaEventQuery"));
    return;
  }
  if (host_mirror_failed()) note_host_error(mirror_status());
}

void CudaStream::mark_fallible() {
  if (cudaEventRecord(fallible_event_, stream_) != cudaSuccess) cudaGetLastError();
  fallible_pending_ = true;
}

Status CudaStream::check_launch(cudaError_t e, const std::string& what) {
  return device_->check(e, what);
}

cudaEvent_t CudaStream::take_timing_event() {
  {
    std::lock_guard<std::mutex> lock(records_mu_);
    if (!free_timing_events_.empty()) {
      cudaEvent_t e = free_timing_events_.back();
      free_timing_events_.pop_back();
      return e;
    }
  }
  cudaEvent_t e = nullptr;
  if (cudaEventCreate(&e) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return e;
}

Status CudaStream::begin_command(PendingRecord* rec, CommandKind kind, uint64_t tag) {
  rec->record.tag = tag;
  rec->record.command = kind;
  if (!record_) return ok_status();
  rec->start = take_timing_event();
  if (!rec->start) return internal_error("cannot create a timing event");
  return device_->check(cudaEventRecord(rec->start, stream_), "cudaEventRecord");
}

void CudaStream::end_command(PendingRecord* rec) {
  if (!record_ || !rec->start) return;
  rec->end = take_timing_event();
  if (!rec->end || cudaEventRecord(rec->end, stream_) != cudaSuccess) {
    cudaGetLastError();
    return;
  }
  std::lock_guard<std::mutex> lock(records_mu_);
  pending_.push_back(*rec);
}

void CudaStream::collect_records() {
  // records_mu_ held.
  while (!pending_.empty()) {
    PendingRecord& p = pending_.front();
    const cudaError_t q = cudaEventQuery(p.end);
    if (q == cudaErrorNotReady) break;
    CommandRecord r = p.record;
    if (q == cudaSuccess) {
      float ms = 0;
      Result<uint64_t> start = device_->event_time_ns(p.start);
      if (start.ok() && cudaEventElapsedTime(&ms, p.start, p.end) == cudaSuccess) {
        r.start_ns = *start;
        r.end_ns = *start + uint64_t(ms > 0 ? double(ms) * 1e6 : 0.0);
      }
    }
    cudaGetLastError();
    completed_.push_back(r);
    free_timing_events_.push_back(p.start);
    free_timing_events_.push_back(p.end);
    pending_.pop_front();
  }
}

size_t CudaStream::take_records(CommandRecord* out, size_t capacity) {
  DeviceScope scope(device_->ordinal());
  std::lock_guard<std::mutex> lock(records_mu_);
  collect_records();
  size_t n = 0;
  while (n < capacity && !completed_.empty()) {
    out[n++] = completed_.front();
    completed_.pop_front();
  }
  return n;
}

Status CudaStream::host_task(std::function<Status()> work, bool always, const std::string& what) {
  HostTaskRunner* r = runner();
  return r->enqueue(stream_, [this, work = std::move(work), always, what] {
    if (!always && (host_mirror_failed() || known_failed())) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    Status s = work();
    if (!s.ok()) note_host_error(s.with_context(what));
  });
}

namespace {

bool is_pinned(const void* p) {
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a.type == cudaMemoryTypeHost || a.type == cudaMemoryTypeManaged ||
         a.type == cudaMemoryTypeDevice;
}

}  // namespace

Status CudaStream::copy(const plugin::CopyCall& c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  DeviceScope scope(device_->ordinal());
  refresh_fallible();
  if (known_failed()) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return ok_status();
  }
  return copy_impl(c);
}

Status CudaStream::copy_impl(const plugin::CopyCall& c) {
  auto* sb = static_cast<CudaBuffer*>(c.src_buffer);
  auto* db = static_cast<CudaBuffer*>(c.dst_buffer);
  const uint64_t n = c.size_bytes;
  PendingRecord rec;
  rec.record.bytes_read = sb && !sb->is_host() ? n : 0;
  rec.record.bytes_written = db && !db->is_host() ? n : 0;
  const bool via_link = c.src_host || c.dst_host || (sb && sb->is_host()) ||
                        (db && db->is_host()) || c.direction == CommandKind::kCopyPeer;
  rec.record.link_bytes = via_link ? n : 0;
  rec.record.bound = via_link ? BoundBy::kLink : BoundBy::kMemory;
  HAL_RETURN_IF_ERROR(begin_command(&rec, c.direction, c.tag));
  const bool virt = (sb && sb->is_virtual()) || (db && db->is_virtual());
  if (!virt && n > 0) {
    const void* src = c.src_host ? c.src_host : sb->at(c.src_offset);
    void* dst = c.dst_host ? c.dst_host : db->at(c.dst_offset);
    if (c.direction == CommandKind::kCopyPeer) {
      const int src_dev = static_cast<CudaDevice*>(sb->device())->ordinal();
      const int dst_dev = static_cast<CudaDevice*>(db->device())->ordinal();
      if (fallible_pending_) {
        CudaDevice* dev = device_;
        HAL_RETURN_IF_ERROR(host_task(
            [this, dev, dst, dst_dev, src, src_dev, n]() -> Status {
              cudaStream_t side = runner_->side_stream();
              HAL_RETURN_IF_ERROR(dev->check(
                  cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, n, side), "cudaMemcpyPeerAsync"));
              return dev->check(cudaStreamSynchronize(side), "cudaStreamSynchronize");
            },
            false, "peer copy"));
      } else {
        HAL_RETURN_IF_ERROR(device_->check(
            cudaMemcpyPeerAsync(dst, dst_dev, src, src_dev, n, stream_), "cudaMemcpyPeerAsync"));
      }
    } else if (c.src_host || c.dst_host) {
      const bool pageable_dst = c.dst_host && !is_pinned(c.dst_host);
      if (pageable_dst || fallible_pending_) {
        CudaDevice* dev = device_;
        HAL_RETURN_IF_ERROR(host_task(
            [this, dev, dst, src, n]() -> Status {
              cudaStream_t side = runner_->side_stream();
              HAL_RETURN_IF_ERROR(dev->check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, side),
                                             "cudaMemcpyAsync"));
              return dev->check(cudaStreamSynchronize(side), "cudaStreamSynchronize");
            },
            false, c.dst_host ? "copy to host" : "copy from host"));
      } else {
        HAL_RETURN_IF_ERROR(device_->check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_),
                                           "cudaMemcpyAsync"));
      }
    } else if (fallible_pending_) {
      HAL_RETURN_IF_ERROR(
          check_launch(launch_copy_bytes(dst, src, n, error_ref(), stream_), "copy kernel launch"));
    } else {
      HAL_RETURN_IF_ERROR(device_->check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, stream_),
                                         "cudaMemcpyAsync"));
    }
  }
  end_command(&rec);
  return ok_status();
}

Status CudaStream::fill(const plugin::FillCall& f) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  DeviceScope scope(device_->ordinal());
  refresh_fallible();
  if (known_failed()) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return ok_status();
  }
  auto* b = static_cast<CudaBuffer*>(f.buffer);
  PendingRecord rec;
  rec.record.bytes_written = b->is_host() ? 0 : f.size_bytes;
  rec.record.bound = BoundBy::kMemory;
  HAL_RETURN_IF_ERROR(begin_command(&rec, CommandKind::kFill, f.tag));
  if (!b->is_virtual() && f.size_bytes > 0) {
    bool uniform = true;
    for (uint32_t i = 1; i < f.pattern_size; ++i) uniform &= f.pattern[i] == f.pattern[0];
    if (uniform && !fallible_pending_ && !b->is_host()) {
      HAL_RETURN_IF_ERROR(
          device_->check(cudaMemsetAsync(b->at(f.offset), f.pattern[0], f.size_bytes, stream_),
                         "cudaMemsetAsync"));
    } else {
      HAL_RETURN_IF_ERROR(check_launch(launch_fill(b->at(f.offset), f.size_bytes, f.pattern.data(),
                                                   f.pattern_size, error_ref(), stream_),
                                       "fill kernel launch"));
    }
  }
  end_command(&rec);
  return ok_status();
}

Result<void*> CudaStream::scratch(uint64_t bytes) {
  HAL_ASSIGN_OR_RETURN(void* p, device_->allocate_scratch(bytes, stream_));
  scratch_.push_back(p);
  return p;
}

const BlasLt* CudaStream::blaslt() const {
  auto lt = load_blaslt();
  return lt.ok() ? *lt : nullptr;
}

Result<cublasLtHandle_t> CudaStream::blaslt_handle() {
  if (blaslt_handle_) return blaslt_handle_;
  HAL_ASSIGN_OR_RETURN(const BlasLt* lt, load_blaslt());
  cublasLtHandle_t h = nullptr;
  const cublasStatus_t st = lt->create(&h);
  if (st != CUBLAS_STATUS_SUCCESS) return internal_error("cublasLtCreate: " + blas_status_name(st));
  // 32 MiB of workspace: what NVIDIA recommends for Hopper's fastest kernels.
  const uint64_t ws = uint64_t(32) << 20;
  Result<void*> p = device_->allocate_scratch(ws, stream_);
  if (p.ok()) {
    blaslt_workspace_ = *p;
    blaslt_workspace_bytes_ = ws;
  }
  blaslt_handle_ = h;
  return h;
}

Status CudaStream::dispatch(const plugin::OpCall& op, uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  DeviceScope scope(device_->ordinal());
  refresh_fallible();
  if (known_failed()) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return ok_status();
  }
  const OpSpec spec = op.spec();
  PendingRecord rec;
  rec.record.op = op.kind;
  if (record_) {
    const OpCost cost = analytic_cost(spec);
    rec.record.flops = cost.flops;
    rec.record.bytes_read = cost.bytes_read;
    rec.record.bytes_written = cost.bytes_written;
    const DeviceInfo& info = device_->info();
    const double t_compute = cost.flops / std::max(1.0, info.peak_flops_for(spec.inputs[0].dtype));
    const double t_memory = double(cost.bytes_read + cost.bytes_written) /
                            std::max(1.0, info.memory_bandwidth_bytes_per_s);
    if (std::max(t_compute, t_memory) < info.launch_overhead_s)
      rec.record.bound = BoundBy::kOverhead;
    else
      rec.record.bound = t_compute > t_memory ? BoundBy::kCompute : BoundBy::kMemory;
  }
  HAL_RETURN_IF_ERROR(begin_command(&rec, CommandKind::kOp, tag));
  bool virt = static_cast<CudaBuffer*>(op.output.buffer)->is_virtual();
  for (int i = 0; i < op.num_inputs; ++i)
    virt |= static_cast<CudaBuffer*>(op.inputs[i].buffer)->is_virtual();
  Status s = virt ? ok_status() : run_op(*this, op);
  for (void* p : scratch_) device_->free_scratch(p, stream_);
  scratch_.clear();
  if (!s.ok()) {
    // Nothing was enqueued after the start event: return it to the pool unrecorded.
    if (rec.start) {
      std::lock_guard<std::mutex> rl(records_mu_);
      free_timing_events_.push_back(rec.start);
    }
    return s;
  }
  end_command(&rec);
  return ok_status();
}

Status CudaStream::record_event(plugin::EventImpl& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  return static_cast<CudaEvent&>(e).record(device_, stream_);
}

Status CudaStream::wait_event(plugin::EventImpl& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  cudaEvent_t h = static_cast<CudaEvent&>(e).handle();
  if (!h) return ok_status();  // never recorded: nothing to wait for
  DeviceScope scope(device_->ordinal());
  return device_->check(cudaStreamWaitEvent(stream_, h, 0), "cudaStreamWaitEvent");
}

Status CudaStream::enqueue_host_func(hal_host_func fn, void* user_data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (device_->lost()) return device_->lost_status();
  DeviceScope scope(device_->ordinal());
  return host_task(
      [fn, user_data]() -> Status {
        fn(user_data);
        return ok_status();
      },
      true, "host function");
}

Status CudaStream::synchronize() {
  std::lock_guard<std::mutex> lock(mu_);
  DeviceScope scope(device_->ordinal());
  HAL_RETURN_IF_ERROR(device_->check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"));
  Status first;
  {
    std::lock_guard<std::mutex> el(host_error_mu_);
    first = std::move(host_error_);
    host_error_ = Status();
  }
  uint64_t skipped = skipped_.exchange(0, std::memory_order_relaxed);
  if (host_mirror_failed()) {
    ErrorSlot slot{};
    if (cudaMemcpy(&slot, error_device_, sizeof slot, cudaMemcpyDeviceToHost) == cudaSuccess)
      skipped += uint64_t(slot.skipped > 0 ? slot.skipped : 0);
    if (first.ok()) first = mirror_status();
    HAL_RETURN_IF_ERROR(
        device_->check(cudaMemsetAsync(error_device_, 0, sizeof(ErrorSlot), stream_),
                       "clearing the stream's error slot"));
    HAL_RETURN_IF_ERROR(device_->check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"));
    std::memset(static_cast<void*>(error_mirror_), 0, sizeof(ErrorSlot));
  }
  fallible_pending_ = false;
  if (!first.ok() && skipped > 0)
    first = Status(first.code(), first.message() + " (" + std::to_string(skipped) +
                                     " later command(s) of the stream were skipped)");
  return first;
}

}  // namespace hal::cuda

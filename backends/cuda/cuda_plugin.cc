// The CUDA backend plugin: each NVIDIA GPU the CUDA runtime sees is a device cuda:N.
// Devices, buffers and events live here; streams in cuda_stream.cc; ops in cuda_ops.cc and
// cuda_matmul.cc; the kernels in kernels/. cuda_internal.h describes the design.
//
// Plugin options: compute_precision=fp32|tf32 (f32 matmuls on TF32 tensor cores; also
// HAL_CUDA_TF32=1), host_functions=auto|callback (callback forces the fallback host
// function mechanism, for tests).
//
// On a machine without a GPU or driver the plugin loads, creates no device and logs why
// (cudaGetDeviceCount's error), so the platform lists no cuda devices.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "cuda_internal.h"
#include "cuda_nvml.h"
#include "hal/units.h"

namespace hal::cuda {

// ---- buffers ------------------------------------------------------------------------

CudaBuffer::CudaBuffer(CudaDevice* device, uint64_t size, MemoryKind kind, void* ptr, void* base,
                       bool pooled)
    : BufferImpl(device, size, kind), ptr_(ptr), base_(base), pooled_(pooled) {}

CudaBuffer::~CudaBuffer() {
  auto* d = static_cast<CudaDevice*>(device());
  if (is_virtual())
    d->release_virtual(size());
  else if (is_host())
    d->free_host_memory(base_, size());
  else
    d->free_device_memory(base_, pooled_, size());
}

Result<void*> CudaBuffer::map() {
  if (is_virtual()) return failed_precondition("a virtual buffer has no storage to map");
  if (!is_host())
    return failed_precondition(
        "GPU device memory is not host-addressable: copy it to the host, or allocate "
        "host_pinned or host_visible memory to map it");
  return ptr_;
}

// ---- events -------------------------------------------------------------------------

CudaEvent::CudaEvent(CudaDevice* device) : device_(device) {}

CudaEvent::~CudaEvent() {
  if (event_) {
    DeviceScope scope(device_->ordinal());
    cudaEventDestroy(event_);
  }
}

Status CudaEvent::record(CudaDevice* device, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (event_ && device != device_) {
    // CUDA events belong to one device: move to the recording stream's. (Recording an
    // event of one GPU on another GPU's stream while a thread synchronises on it is a race
    // the caller made; CUDA releases a destroyed event once its pending record completes.)
    DeviceScope old(device_->ordinal());
    cudaEventDestroy(event_);
    event_ = nullptr;
  }
  device_ = device;
  DeviceScope scope(device->ordinal());
  if (!event_) HAL_RETURN_IF_ERROR(device->check(cudaEventCreate(&event_), "cudaEventCreate"));
  HAL_RETURN_IF_ERROR(device->check(cudaEventRecord(event_, stream), "cudaEventRecord"));
  recorded_ = true;
  ++generation_;
  cached_.reset();
  return ok_status();
}

cudaEvent_t CudaEvent::handle() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recorded_ ? event_ : nullptr;
}

Status CudaEvent::synchronize() {
  cudaEvent_t e;
  CudaDevice* d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!recorded_) return ok_status();
    e = event_;
    d = device_;
  }
  DeviceScope scope(d->ordinal());
  return d->check(cudaEventSynchronize(e), "cudaEventSynchronize");
}

Result<bool> CudaEvent::query() {
  cudaEvent_t e;
  CudaDevice* d;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!recorded_) return true;
    e = event_;
    d = device_;
  }
  DeviceScope scope(d->ordinal());
  const cudaError_t r = cudaEventQuery(e);
  if (r == cudaSuccess) return true;
  if (r == cudaErrorNotReady) return false;
  return d->check(r, "cudaEventQuery");
}

Result<uint64_t> CudaEvent::timestamp_ns() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!recorded_) return failed_precondition("event was never recorded");
  if (cached_ && cached_->first == generation_) return cached_->second;
  DeviceScope scope(device_->ordinal());
  const cudaError_t r = cudaEventQuery(event_);
  if (r == cudaErrorNotReady) return failed_precondition("event has not completed yet");
  HAL_RETURN_IF_ERROR(device_->check(r, "cudaEventQuery"));
  HAL_ASSIGN_OR_RETURN(uint64_t ts, device_->event_time_ns(event_));
  cached_ = std::make_pair(generation_, ts);
  return ts;
}

// ---- devices ------------------------------------------------------------------------

CudaDevice::CudaDevice(int ordinal, CudaOptions options) : ordinal_(ordinal), options_(options) {}

Result<std::unique_ptr<CudaDevice>> CudaDevice::open(int ordinal,
                                                     const std::vector<PeerView>& peers,
                                                     const CudaOptions& options,
                                                     const plugin::PluginContext& context) {
  std::unique_ptr<CudaDevice> d(new CudaDevice(ordinal, options));
  HAL_RETURN_IF_ERROR(d->init(peers, context));
  return d;
}

Status CudaDevice::init(const std::vector<PeerView>& peers, const plugin::PluginContext& context) {
  const std::string where = "GPU " + std::to_string(ordinal_);
  DeviceScope scope(ordinal_);
  cudaDeviceProp props{};
  HAL_RETURN_IF_ERROR(
      cuda_status(cudaGetDeviceProperties(&props, ordinal_), where + ": cudaGetDeviceProperties"));
  HAL_RETURN_IF_ERROR(cuda_status(cudaSetDevice(ordinal_), where + ": cudaSetDevice"));
  HAL_RETURN_IF_ERROR(cuda_status(cudaFree(nullptr), where + ": creating its CUDA context"));
  sm_count_ = props.multiProcessorCount;
  info_ = describe_device(ordinal_, props, peers, options_.tf32);
  memory_ = std::make_unique<plugin::MemoryAccountant>(info_.memory_bytes);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  host_memory_ = std::make_unique<plugin::MemoryAccountant>(
      pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : uint64_t(1) << 40);

  HAL_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&alloc_stream_, cudaStreamNonBlocking),
                                  where + ": creating its allocation stream"));
  int pools_supported = 0;
  cudaDeviceGetAttribute(&pools_supported, cudaDevAttrMemoryPoolsSupported, ordinal_);
  std::string allocator = "cudaMalloc (memory pools unsupported)";
  if (pools_supported) {
    cudaMemPoolProps pp{};
    pp.allocType = cudaMemAllocationTypePinned;
    pp.handleTypes = cudaMemHandleTypeNone;
    pp.location.type = cudaMemLocationTypeDevice;
    pp.location.id = ordinal_;
    if (cudaMemPoolCreate(&pool_, &pp) == cudaSuccess) {
      uint64_t keep = UINT64_MAX;  // cache freed memory in the pool; trimmed on pressure
      cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep);
      allocator = "stream-ordered memory pool (cudaMallocFromPoolAsync)";
    } else {
      pool_ = nullptr;
      cudaGetLastError();
    }
  }
  info_.properties.emplace_back("allocator", allocator);
  // cuBLASLt is opened with the first GPU (never on machines without one): which matmul
  // path this device has is then visible in `halctl info`.
  if (Result<const BlasLt*> lt = load_blaslt(); lt.ok()) {
    const size_t v = (*lt)->get_version();
    info_.properties.emplace_back(
        "matmul", "cuBLASLt " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) +
                      "." + std::to_string(v % 100) + " (" + (*lt)->library + ")");
  } else {
    info_.properties.emplace_back("matmul", "fallback GEMM kernel only: " + lt.status().message());
    context.log(HAL_LOG_WARNING,
                where + ": " + lt.status().message() + "; matmuls use the slower fallback kernel");
  }

  // Peers: direct access for kernels and copies, and the pool's memory visible to them.
  for (const PeerView& p : peers) {
    if (p.ordinal == ordinal_ || !p.can_access) continue;
    const cudaError_t e = cudaDeviceEnablePeerAccess(p.ordinal, 0);
    if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled)
      context.log(HAL_LOG_WARNING, where + ": peer access to GPU " + std::to_string(p.ordinal) +
                                       " failed: " + cuda_error_text(e));
    cudaGetLastError();
    if (pool_) {
      cudaMemAccessDesc access{};
      access.location.type = cudaMemLocationTypeDevice;
      access.location.id = p.ordinal;
      access.flags = cudaMemAccessFlagsProtReadWrite;
      if (cudaMemPoolSetAccess(pool_, &access, 1) != cudaSuccess) cudaGetLastError();
    }
  }

  // The time base.
  HAL_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&base_event_), where + ": cudaEventCreate"));
  HAL_RETURN_IF_ERROR(
      cuda_status(cudaEventRecord(base_event_, alloc_stream_), where + ": cudaEventRecord"));
  HAL_RETURN_IF_ERROR(
      cuda_status(cudaEventSynchronize(base_event_), where + ": cudaEventSynchronize"));

  probe_host_func_mechanism(context);
  info_.properties.emplace_back("host_functions", host_func_mechanism_);
  if (Nvml::instance().available()) {
    char bus_id[32] = {};
    cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, ordinal_);
    nvml_device_ = Nvml::instance().device_by_bus_id(bus_id);
  }
  return ok_status();
}

void CudaDevice::probe_host_func_mechanism(const plugin::PluginContext& context) {
  host_func_mechanism_ = "cudaLaunchHostFunc handing off to a stream thread (fallback)";
  if (options_.force_host_func_fallback) {
    host_func_mechanism_ += ": forced by option host_functions=callback";
    return;
  }
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found{};
#if CUDART_VERSION >= 12050
  cudaError_t e = cudaGetDriverEntryPointByVersion("cuStreamWaitValue32", &fn, 12000,
                                                   cudaEnableDefault, &found);
#else
  cudaError_t e = cudaGetDriverEntryPoint("cuStreamWaitValue32", &fn, cudaEnableDefault, &found);
#endif
  if (e != cudaSuccess || !fn || found != cudaDriverEntryPointSuccess) {
    cudaGetLastError();
    host_func_mechanism_ += ": cuStreamWaitValue32 not found";
    return;
  }
  auto wait_value = reinterpret_cast<WaitValueFn>(fn);
  // Check that a stream really waits on host memory and resumes when it changes.
  uint32_t* counter = nullptr;
  cudaStream_t s = nullptr;
  cudaEvent_t ev = nullptr;
  std::string failure;
  if (cudaHostAlloc(reinterpret_cast<void**>(&counter), 64,
                    cudaHostAllocPortable | cudaHostAllocMapped) != cudaSuccess ||
      cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) != cudaSuccess ||
      cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) {
    failure = "could not set up the probe";
  } else {
    *reinterpret_cast<volatile uint32_t*>(counter) = 0;
    void* dptr = nullptr;
    cudaHostGetDevicePointer(&dptr, counter, 0);
    CUresult r = wait_value(s, CUdeviceptr(dptr), 1, CU_STREAM_WAIT_VALUE_GEQ);
    if (r != CUDA_SUCCESS) {
      failure = "cuStreamWaitValue32 returned CUresult " + std::to_string(int(r));
    } else {
      cudaEventRecord(ev, s);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      const bool held = cudaEventQuery(ev) == cudaErrorNotReady;
      reinterpret_cast<std::atomic<uint32_t>*>(counter)->store(1, std::memory_order_seq_cst);
      bool released = false;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (std::chrono::steady_clock::now() < deadline) {
        if (cudaEventQuery(ev) == cudaSuccess) {
          released = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
      if (!held) failure = "the stream did not wait for the counter";
      if (!released) failure = "the stream did not resume after the counter changed";
    }
  }
  cudaGetLastError();
  if (ev) cudaEventDestroy(ev);
  if (s) {
    if (failure.empty() || failure.find("resume") == std::string::npos) cudaStreamDestroy(s);
    // else: the stream may still wait; leaving it is safer than destroying it.
  }
  if (counter) cudaFreeHost(counter);
  if (!failure.empty()) {
    host_func_mechanism_ += ": stream memory operations failed the probe (" + failure + ")";
    context.log(HAL_LOG_WARNING, "GPU " + std::to_string(ordinal_) + ": " + host_func_mechanism_);
    return;
  }
  wait_value_ = wait_value;
  host_func_mechanism_ =
      "stream waits on a host-mapped counter (cuStreamWaitValue32), stream thread";
}

CudaDevice::~CudaDevice() {
  DeviceScope scope(ordinal_);
  if (alloc_stream_) cudaStreamSynchronize(alloc_stream_);
  if (pool_) cudaMemPoolDestroy(pool_);
  if (base_event_) cudaEventDestroy(base_event_);
  if (alloc_stream_) cudaStreamDestroy(alloc_stream_);
}

Status CudaDevice::lost_status() const {
  std::lock_guard<std::mutex> lock(lost_mu_);
  return device_lost("the GPU stopped working (" + lost_reason_ +
                     "); its work and memory are gone: restart the process");
}

Status CudaDevice::check(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return ok_status();
  if (is_sticky(e)) {
    std::lock_guard<std::mutex> lock(lost_mu_);
    if (!lost_.exchange(true)) lost_reason_ = what + ": " + cuda_error_text(e);
  }
  if (lost()) return lost_status();
  cudaGetLastError();  // non-sticky: clear it so later calls do not report it again
  return cuda_status(e, what);
}

Result<std::unique_ptr<plugin::BufferImpl>> CudaDevice::allocate(uint64_t size, MemoryKind kind,
                                                                 uint64_t alignment) {
  if (lost()) return lost_status();
  if (kind == MemoryKind::kVirtual) {
    HAL_RETURN_IF_ERROR(memory_->reserve(size, "device memory"));
    return std::unique_ptr<plugin::BufferImpl>(
        new CudaBuffer(this, size, kind, nullptr, nullptr, false));
  }
  DeviceScope scope(ordinal_);
  if (kind == MemoryKind::kHostPinned || kind == MemoryKind::kHostVisible) {
    const uint64_t extra = alignment > 4096 ? alignment : 0;
    if (size > UINT64_MAX - extra - 1) return out_of_memory("allocation size overflows");
    HAL_RETURN_IF_ERROR(host_memory_->reserve(size, "pinned host memory"));
    void* base = nullptr;
    const cudaError_t e = cudaHostAlloc(&base, size + extra + (size == 0),
                                        cudaHostAllocPortable | cudaHostAllocMapped);
    if (e != cudaSuccess) {
      host_memory_->release(size);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        return out_of_memory("cannot pin " + format_bytes(size) +
                             " of host memory (cudaHostAlloc)");
      }
      return check(e, "cudaHostAlloc");
    }
    uintptr_t p = reinterpret_cast<uintptr_t>(base);
    if (extra) p = (p + alignment - 1) / alignment * alignment;
    return std::unique_ptr<plugin::BufferImpl>(
        new CudaBuffer(this, size, kind, reinterpret_cast<void*>(p), base, false));
  }

  HAL_RETURN_IF_ERROR(memory_->reserve(size, "device memory"));
  if (size == 0)
    return std::unique_ptr<plugin::BufferImpl>(
        new CudaBuffer(this, 0, kind, nullptr, nullptr, false));
  const uint64_t extra = alignment > 256 ? alignment : 0;
  if (size > UINT64_MAX - extra) {
    memory_->release(size);
    return out_of_memory("allocation size overflows");
  }
  void* base = nullptr;
  cudaError_t e;
  {
    std::lock_guard<std::mutex> lock(alloc_mu_);
    if (pool_) {
      e = cudaMallocFromPoolAsync(&base, size + extra, pool_, alloc_stream_);
      if (e == cudaErrorMemoryAllocation) {
        // Memory cached in the pool is returned to the driver, then one more try.
        cudaGetLastError();
        cudaStreamSynchronize(alloc_stream_);
        cudaMemPoolTrimTo(pool_, 0);
        e = cudaMallocFromPoolAsync(&base, size + extra, pool_, alloc_stream_);
      }
      if (e == cudaSuccess) e = cudaStreamSynchronize(alloc_stream_);
    } else {
      e = cudaMalloc(&base, size + extra);
    }
  }
  if (e != cudaSuccess) {
    memory_->release(size);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      return out_of_memory("cannot allocate " + format_bytes(size) +
                           " of device memory: the GPU has " + format_bytes(free_b) + " free of " +
                           format_bytes(total_b) +
                           " (the CUDA context and other processes use the rest)");
    }
    return check(e, "allocating " + format_bytes(size) + " of device memory");
  }
  uintptr_t p = reinterpret_cast<uintptr_t>(base);
  if (extra) p = (p + alignment - 1) / alignment * alignment;
  return std::unique_ptr<plugin::BufferImpl>(
      new CudaBuffer(this, size, kind, reinterpret_cast<void*>(p), base, pool_ != nullptr));
}

void CudaDevice::free_device_memory(void* base, bool pooled, uint64_t size) {
  if (base) {
    DeviceScope scope(ordinal_);
    if (pooled) {
      std::lock_guard<std::mutex> lock(alloc_mu_);
      if (cudaFreeAsync(base, alloc_stream_) != cudaSuccess) cudaGetLastError();
    } else if (cudaFree(base) != cudaSuccess) {
      cudaGetLastError();
    }
  }
  memory_->release(size);
}

void CudaDevice::free_host_memory(void* base, uint64_t size) {
  if (base) {
    DeviceScope scope(ordinal_);
    if (cudaFreeHost(base) != cudaSuccess) cudaGetLastError();
  }
  host_memory_->release(size);
}

Result<void*> CudaDevice::allocate_scratch(uint64_t bytes, cudaStream_t stream) {
  void* p = nullptr;
  cudaError_t e;
  if (pool_)
    e = cudaMallocFromPoolAsync(&p, bytes, pool_, stream);
  else
    e = cudaMallocAsync(&p, bytes, stream);
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return out_of_memory("no device memory for " + format_bytes(bytes) + " of kernel workspace");
  }
  HAL_RETURN_IF_ERROR(check(e, "allocating kernel workspace"));
  return p;
}

void CudaDevice::free_scratch(void* p, cudaStream_t stream) {
  if (p && cudaFreeAsync(p, stream) != cudaSuccess) cudaGetLastError();
}

Result<std::unique_ptr<plugin::StreamImpl>> CudaDevice::create_stream(uint32_t flags) {
  if (lost()) return lost_status();
  HAL_ASSIGN_OR_RETURN(std::unique_ptr<CudaStream> s, CudaStream::create(this, flags));
  return std::unique_ptr<plugin::StreamImpl>(std::move(s));
}

Result<std::unique_ptr<plugin::EventImpl>> CudaDevice::create_event() {
  if (lost()) return lost_status();
  return std::unique_ptr<plugin::EventImpl>(new CudaEvent(this));
}

Result<uint64_t> CudaDevice::event_time_ns(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(time_mu_);
  DeviceScope scope(ordinal_);
  float ms = 0;
  HAL_RETURN_IF_ERROR(check(cudaEventElapsedTime(&ms, base_event_, event), "cudaEventElapsedTime"));
  double t = base_ms_ + double(ms);
  if (ms > 10000.0f) {
    // Move the base forward so later readings stay precise (f32 ms lose resolution far
    // from the base); its time is read against the old base.
    cudaEvent_t next = nullptr;
    if (cudaEventCreate(&next) == cudaSuccess) {
      float step = 0;
      if (cudaEventRecord(next, alloc_stream_) == cudaSuccess &&
          cudaEventSynchronize(next) == cudaSuccess &&
          cudaEventElapsedTime(&step, base_event_, next) == cudaSuccess) {
        cudaEventDestroy(base_event_);
        base_event_ = next;
        base_ms_ += double(step);
      } else {
        cudaGetLastError();
        cudaEventDestroy(next);
      }
    }
  }
  return uint64_t(t > 0 ? t * 1e6 : 0.0);
}

Result<Telemetry> CudaDevice::telemetry() const {
  Telemetry t;
  if (nvml_device_) {
    const NvmlReadings r = Nvml::instance().readings(nvml_device_);
    t.utilization_percent = r.utilization_percent;
    t.memory_used_bytes = r.memory_used_bytes;
    t.power_watts = r.power_watts;
    t.temperature_celsius = r.temperature_celsius;
    t.core_clock_hz = r.sm_clock_hz;
    t.memory_clock_hz = r.memory_clock_hz;
  }
  if (t.memory_used_bytes < 0) {
    DeviceScope scope(ordinal_);
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      t.memory_used_bytes = double(total_b - free_b);
    else
      cudaGetLastError();
  }
  return t;
}

// ---- the plugin ---------------------------------------------------------------------

namespace {

class CudaPlugin : public plugin::PluginImpl {
 public:
  explicit CudaPlugin(std::vector<std::unique_ptr<CudaDevice>> devices)
      : devices_(std::move(devices)) {}
  ~CudaPlugin() override { devices_.clear(); }
  uint32_t device_count() const override { return uint32_t(devices_.size()); }
  plugin::DeviceImpl* device(uint32_t index) override { return devices_[index].get(); }

 private:
  std::vector<std::unique_ptr<CudaDevice>> devices_;
};

Result<CudaOptions> parse_options(const plugin::PluginContext& ctx) {
  CudaOptions o;
  for (const auto& [key, value] : ctx.options) {
    if (key == "compute_precision") {
      if (value != "fp32" && value != "tf32")
        return invalid_argument("cuda option compute_precision='" + value +
                                "': expected fp32 or tf32");
      o.tf32 = value == "tf32";
    } else if (key == "host_functions") {
      if (value != "auto" && value != "callback")
        return invalid_argument("cuda option host_functions='" + value +
                                "': expected auto or callback");
      o.force_host_func_fallback = value == "callback";
    } else {
      return invalid_argument("unknown cuda option '" + key +
                              "' (options: compute_precision, host_functions)");
    }
  }
  if (ctx.options.find("compute_precision") == ctx.options.end()) {
    const char* env = std::getenv("HAL_CUDA_TF32");
    o.tf32 = env && std::string(env) == "1";
  }
  return o;
}

Result<std::unique_ptr<plugin::PluginImpl>> create_cuda_plugin(const plugin::PluginContext& ctx) {
  HAL_ASSIGN_OR_RETURN(CudaOptions options, parse_options(ctx));
  std::vector<std::unique_ptr<CudaDevice>> devices;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    ctx.log(HAL_LOG_INFO, "no CUDA devices: " + cuda_error_text(e));
    return std::unique_ptr<plugin::PluginImpl>(new CudaPlugin(std::move(devices)));
  }
  // Which GPUs open (a context can be created on them), then their peer relations.
  std::vector<PeerView> usable;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) {
      cudaGetLastError();
      ctx.log(HAL_LOG_WARNING,
              "GPU " + std::to_string(i) + " skipped: cudaGetDeviceProperties failed");
      continue;
    }
    // A context must be creatable (a GPU in exclusive mode held by another process is
    // not): decided here, before any device is described, because links name peers by
    // their index among the devices this plugin presents.
    if (cudaSetDevice(i) != cudaSuccess || cudaFree(nullptr) != cudaSuccess) {
      const cudaError_t why = cudaGetLastError();
      ctx.log(HAL_LOG_WARNING, "GPU " + std::to_string(i) + " skipped: no CUDA context (" +
                                   cuda_error_text(why) + ")");
      continue;
    }
    PeerView v;
    v.ordinal = i;
    v.pci_domain = unsigned(p.pciDomainID);
    v.pci_bus = unsigned(p.pciBusID);
    v.pci_device = unsigned(p.pciDeviceID);
    usable.push_back(v);
  }
  for (const PeerView& self : usable) {
    std::vector<PeerView> peers = usable;
    for (PeerView& q : peers) {
      int can = 0;
      if (q.ordinal != self.ordinal &&
          cudaDeviceCanAccessPeer(&can, self.ordinal, q.ordinal) != cudaSuccess) {
        cudaGetLastError();
        can = 0;
      }
      q.can_access = can != 0;
    }
    auto d = CudaDevice::open(self.ordinal, peers, options, ctx);
    if (!d.ok()) {
      ctx.log(HAL_LOG_WARNING,
              "GPU " + std::to_string(self.ordinal) + " skipped: " + d.status().to_string());
      continue;
    }
    devices.push_back(std::move(d).value());
  }
  return std::unique_ptr<plugin::PluginImpl>(new CudaPlugin(std::move(devices)));
}

}  // namespace
}  // namespace hal::cuda

HAL_DEFINE_PLUGIN("cuda", "0.1.0", hal::cuda::create_cuda_plugin)

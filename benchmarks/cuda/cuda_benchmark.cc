// CUDA backend benchmarks (Google Benchmark; built by default, never run by ctest). Every
// time is device time from events (HAL events on the HAL side, CUDA events on the
// baseline side), reported with UseManualTime; each baseline runs in the same process on
// the same GPU right after the HAL side.
//
//  BM_MatmulHalVsCublasLt/N   bf16 N^3 (row-major, f32 accumulation) through the HAL
//                             (Platform -> cuda:0 -> stream dispatch) and cuBLASLt called
//                             directly with the same formulation, heuristic and 32 MiB
//                             workspace. Counters: hal_TFLOPs, cublaslt_TFLOPs,
//                             hal_over_cublaslt (target >= 0.95), peak_TFLOPs (DeviceInfo).
//  BM_CopyD2D/MiB             device-to-device copy through the HAL vs cudaMemcpyAsync:
//                             copy_GBps (bytes copied / s), traffic_GBps (read + write),
//                             traffic_over_peak (vs DeviceInfo's memory bandwidth: ~3.35
//                             TB/s H100 SXM, ~4.8 TB/s H200), hal_over_cuda.
//  BM_Attention/Sq/Skv        fused causal GQA attention (bf16, 32 query heads, 8 kv heads,
//                             head dim 128) vs a naive HAL composition that materialises
//                             the scores: matmul Q K^T -> causal softmax -> matmul P V.
//                             Counters: fused_ms, naive_ms, fused_speedup.
//  BM_DispatchTinyOps         enqueue-to-complete throughput of tiny ops (scale of 256
//                             floats) on one stream: items_per_second = ops/s, and
//                             us_per_op.
//
// Without a GPU the program says so and exits 0 (nothing to measure).
// Run: build/bin/hal_cuda_benchmark [--benchmark_format=json] [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "hal/hal.h"

namespace {

struct Env {
  std::unique_ptr<hal::Platform> platform;
  hal::Device* gpu = nullptr;
};

Env& env() {
  static Env* e = [] {
    auto* e = new Env();
    hal::PlatformOptions o;
    o.only_plugins = {"cuda"};
    auto p = hal::Platform::create(o);
    if (!p.ok()) {
      std::fprintf(stderr, "platform: %s\n", p.status().to_string().c_str());
      std::exit(1);
    }
    e->platform = std::move(*p);
    if (!e->platform->devices().empty()) e->gpu = e->platform->devices()[0];
    return e;
  }();
  return *e;
}

void die(const std::string& what) {
  std::fprintf(stderr, "%s\n", what.c_str());
  std::exit(1);
}

hal::Buffer must_allocate(uint64_t bytes) {
  auto b = env().gpu->allocate(bytes);
  if (!b.ok()) die(b.status().to_string());
  return std::move(b).value();
}

template <typename T>
T must(hal::Result<T> r) {
  if (!r.ok()) die(r.status().to_string());
  return std::move(r).value();
}
void must(const hal::Status& s) {
  if (!s.ok()) die(s.to_string());
}
void must_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(e));
}
void must_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    die(std::string(what) + " failed with cuBLAS status " + std::to_string(int(s)));
}

// Device seconds of `reps` runs of `enqueue` on `s`, bracketed by HAL events.
template <typename Fn>
double hal_device_seconds(hal::Stream& s, int reps, Fn&& enqueue) {
  hal::Event e0 = must(env().gpu->create_event()), e1 = must(env().gpu->create_event());
  must(s.record(e0));
  for (int i = 0; i < reps; ++i) enqueue();
  must(s.record(e1));
  must(s.synchronize());
  return must(hal::Event::elapsed_seconds(e0, e1));
}

template <typename Fn>
double cuda_device_seconds(cudaStream_t s, int reps, Fn&& enqueue) {
  cudaEvent_t e0, e1;
  must_cuda(cudaEventCreate(&e0), "cudaEventCreate");
  must_cuda(cudaEventCreate(&e1), "cudaEventCreate");
  must_cuda(cudaEventRecord(e0, s), "cudaEventRecord");
  for (int i = 0; i < reps; ++i) enqueue();
  must_cuda(cudaEventRecord(e1, s), "cudaEventRecord");
  must_cuda(cudaEventSynchronize(e1), "cudaEventSynchronize");
  float ms = 0;
  must_cuda(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return double(ms) * 1e-3;
}

// ---- matmul ---------------------------------------------------------------------------

// cuBLASLt called directly: row-major C[M,N] = A[M,K] B[K,N] in bf16 as the column-major
// C^T = B^T A^T, exactly the formulation the plugin uses.
struct DirectLt {
  cublasLtHandle_t handle = nullptr;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  void* workspace = nullptr;
  size_t workspace_bytes = size_t(32) << 20;

  DirectLt(int64_t m, int64_t n, int64_t k) {
    must_lt(cublasLtCreate(&handle), "cublasLtCreate");
    must_lt(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
            "cublasLtMatmulDescCreate");
    const cublasOperation_t op = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op, sizeof op);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op, sizeof op);
    must_lt(cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, uint64_t(n), uint64_t(k), n),
            "layout");  // B^T
    must_lt(cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, uint64_t(k), uint64_t(m), k),
            "layout");  // A^T
    must_lt(cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, uint64_t(n), uint64_t(m), n),
            "layout");  // C^T
    must_cuda(cudaMalloc(&workspace, workspace_bytes), "cudaMalloc workspace");
    cublasLtMatmulPreference_t pref;
    must_lt(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                         &workspace_bytes, sizeof workspace_bytes);
    cublasLtMatmulHeuristicResult_t r{};
    int found = 0;
    must_lt(cublasLtMatmulAlgoGetHeuristic(handle, desc, a, b, c, c, pref, 1, &r, &found),
            "heuristic");
    cublasLtMatmulPreferenceDestroy(pref);
    if (found == 0) die("cuBLASLt found no algorithm for the bf16 matmul");
    algo = r.algo;
  }
  ~DirectLt() {
    cudaFree(workspace);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatmulDescDestroy(desc);
    cublasLtDestroy(handle);
  }
  void run(const void* A, const void* B, void* C, cudaStream_t s) {
    const float alpha = 1.0f, beta = 0.0f;
    must_lt(cublasLtMatmul(handle, desc, &alpha, B, a, A, b, &beta, C, c, C, c, &algo, workspace,
                           workspace_bytes, s),
            "cublasLtMatmul");
  }
};

void BM_MatmulHalVsCublasLt(benchmark::State& state) {
  const int64_t n = state.range(0);
  const uint64_t bytes = uint64_t(n * n) * 2;
  hal::Buffer a = must_allocate(bytes), b = must_allocate(bytes), c = must_allocate(bytes);
  hal::Stream s = must(env().gpu->create_stream());
  // Every element 0.5 (bf16 0x3F00): timing does not depend on values, but NaN/Inf
  // patterns could take slow paths.
  must(s.fill(a, 0, bytes, 0x3F00, 2));
  must(s.fill(b, 0, bytes, 0x3F00, 2));
  const hal::OpDescriptor mm(hal::OpKind::kMatmul,
                             {hal::TensorRef::contiguous(a, hal::DType::kBF16, {n, n}),
                              hal::TensorRef::contiguous(b, hal::DType::kBF16, {n, n})},
                             hal::TensorRef::contiguous(c, hal::DType::kBF16, {n, n}));
  must(s.dispatch(mm));  // warm-up: plan, heuristic, workspace
  must(s.synchronize());

  void *da, *db, *dc;
  must_cuda(cudaMalloc(&da, bytes), "cudaMalloc");
  must_cuda(cudaMalloc(&db, bytes), "cudaMalloc");
  must_cuda(cudaMalloc(&dc, bytes), "cudaMalloc");
  must_cuda(cudaMemset(da, 0x3F, bytes), "cudaMemset");
  must_cuda(cudaMemset(db, 0x3F, bytes), "cudaMemset");
  cudaStream_t cs;
  must_cuda(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking), "cudaStreamCreate");
  DirectLt lt(n, n, n);
  lt.run(da, db, dc, cs);
  must_cuda(cudaStreamSynchronize(cs), "cudaStreamSynchronize");

  const int reps = 5;
  const double flops = 2.0 * double(n) * double(n) * double(n) * reps;
  double hal_s = 0, lt_s = 0;
  for (auto _ : state) {
    const double h = hal_device_seconds(s, reps, [&] { must(s.dispatch(mm)); });
    const double l = cuda_device_seconds(cs, reps, [&] { lt.run(da, db, dc, cs); });
    hal_s += h;
    lt_s += l;
    state.SetIterationTime(h / reps);
  }
  state.counters["hal_TFLOPs"] = flops * double(state.iterations()) / hal_s * 1e-12;
  state.counters["cublaslt_TFLOPs"] = flops * double(state.iterations()) / lt_s * 1e-12;
  state.counters["hal_over_cublaslt"] = lt_s / hal_s;
  state.counters["peak_TFLOPs"] = env().gpu->info().peak_flops_for(hal::DType::kBF16) * 1e-12;
  cudaFree(da);
  cudaFree(db);
  cudaFree(dc);
  cudaStreamDestroy(cs);
}

// ---- device-to-device copy -------------------------------------------------------------

void BM_CopyD2D(benchmark::State& state) {
  const uint64_t bytes = uint64_t(state.range(0)) << 20;
  hal::Buffer src = must_allocate(bytes), dst = must_allocate(bytes);
  hal::Stream s = must(env().gpu->create_stream());
  must(s.fill(src, 0, bytes, 1, 1));
  must(s.copy(src, 0, dst, 0, bytes));
  must(s.synchronize());
  void *ds, *dd;
  must_cuda(cudaMalloc(&ds, bytes), "cudaMalloc");
  must_cuda(cudaMalloc(&dd, bytes), "cudaMalloc");
  cudaStream_t cs;
  must_cuda(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking), "cudaStreamCreate");
  must_cuda(cudaMemcpyAsync(dd, ds, bytes, cudaMemcpyDeviceToDevice, cs), "cudaMemcpyAsync");
  const int reps = 10;
  double hal_s = 0, cuda_s = 0;
  for (auto _ : state) {
    const double h = hal_device_seconds(s, reps, [&] { must(s.copy(src, 0, dst, 0, bytes)); });
    const double c = cuda_device_seconds(cs, reps, [&] {
      must_cuda(cudaMemcpyAsync(dd, ds, bytes, cudaMemcpyDeviceToDevice, cs), "memcpy");
    });
    hal_s += h;
    cuda_s += c;
    state.SetIterationTime(h / reps);
  }
  const double moved = double(bytes) * reps * double(state.iterations());
  const double peak = env().gpu->info().memory_bandwidth_bytes_per_s;
  state.counters["copy_GBps"] = moved / hal_s * 1e-9;
  state.counters["traffic_GBps"] = 2 * moved / hal_s * 1e-9;
  state.counters["traffic_over_peak"] = 2 * moved / hal_s / peak;
  state.counters["peak_GBps"] = peak * 1e-9;
  state.counters["cuda_copy_GBps"] = moved / cuda_s * 1e-9;
  state.counters["hal_over_cuda"] = cuda_s / hal_s;
  state.SetBytesProcessed(int64_t(moved));
  cudaFree(ds);
  cudaFree(dd);
  cudaStreamDestroy(cs);
}

// ---- attention --------------------------------------------------------------------------

void BM_Attention(benchmark::State& state) {
  using hal::DType;
  using hal::TensorDesc;
  const int64_t sq = state.range(0), skv = state.range(1);
  const int64_t B = 1, hq = 32, hkv = 8, g = hq / hkv, D = 128;
  const DType t = DType::kBF16;
  hal::Buffer q = must_allocate(uint64_t(B * sq * hq * D) * 2);
  hal::Buffer k = must_allocate(uint64_t(B * skv * hkv * D) * 2);
  hal::Buffer v = must_allocate(uint64_t(B * skv * hkv * D) * 2);
  hal::Buffer out = must_allocate(uint64_t(B * sq * hq * D) * 2);
  hal::Buffer scores = must_allocate(uint64_t(B * hq * sq * skv) * 2);
  hal::Buffer probs = must_allocate(uint64_t(B * hq * sq * skv) * 2);
  hal::Buffer out2 = must_allocate(uint64_t(B * hq * sq * D) * 2);
  hal::Stream s = must(env().gpu->create_stream());
  for (hal::Buffer* buf : {&q, &k, &v}) must(s.fill(*buf, 0, buf->size(), 0x3C00, 2));  // bf16 2^-7

  hal::OpAttributes causal;
  causal.causal = true;
  const hal::OpDescriptor fused(hal::OpKind::kAttention,
                                {hal::TensorRef::contiguous(q, t, {B, sq, hq, D}),
                                 hal::TensorRef::contiguous(k, t, {B, skv, hkv, D}),
                                 hal::TensorRef::contiguous(v, t, {B, skv, hkv, D})},
                                hal::TensorRef::contiguous(out, t, {B, sq, hq, D}), causal);

  // The naive composition over [B, Hkv, G, ...] views of the same q, k, v (no copies):
  // K and V broadcast over the G query heads of their group.
  TensorDesc qv;
  qv.dtype = t;
  qv.shape = {B, hkv, g, sq, D};
  qv.strides = {sq * hq * D, g * D, D, hq * D, 1};
  TensorDesc kt;  // K^T: [B, Hkv, 1, D, Skv]
  kt.dtype = t;
  kt.shape = {B, hkv, 1, D, skv};
  kt.strides = {skv * hkv * D, D, 0, 1, hkv * D};
  TensorDesc vv;
  vv.dtype = t;
  vv.shape = {B, hkv, 1, skv, D};
  vv.strides = {skv * hkv * D, D, 0, hkv * D, 1};
  const hal::Shape sshape{B, hkv, g, sq, skv};
  const hal::OpDescriptor qk(hal::OpKind::kMatmul,
                             {hal::TensorRef{&q, 0, qv}, hal::TensorRef{&k, 0, kt}},
                             hal::TensorRef::contiguous(scores, t, sshape));
  hal::OpAttributes sm;
  sm.causal = true;
  sm.scale = float(1.0 / std::sqrt(double(D)));
  const hal::OpDescriptor softmax(hal::OpKind::kSoftmax,
                                  {hal::TensorRef::contiguous(scores, t, sshape)},
                                  hal::TensorRef::contiguous(probs, t, sshape), sm);
  const hal::OpDescriptor pv(
      hal::OpKind::kMatmul,
      {hal::TensorRef::contiguous(probs, t, sshape), hal::TensorRef{&v, 0, vv}},
      hal::TensorRef::contiguous(out2, t, {B, hkv, g, sq, D}));
  must(s.dispatch(fused));
  must(s.dispatch(qk));
  must(s.dispatch(softmax));
  must(s.dispatch(pv));
  must(s.synchronize());

  const int reps = 3;
  double fused_s = 0, naive_s = 0;
  for (auto _ : state) {
    const double f = hal_device_seconds(s, reps, [&] { must(s.dispatch(fused)); });
    const double n = hal_device_seconds(s, reps, [&] {
      must(s.dispatch(qk));
      must(s.dispatch(softmax));
      must(s.dispatch(pv));
    });
    fused_s += f;
    naive_s += n;
    state.SetIterationTime(f / reps);
  }
  const double it = double(state.iterations()) * reps;
  state.counters["fused_ms"] = fused_s / it * 1e3;
  state.counters["naive_ms"] = naive_s / it * 1e3;
  state.counters["fused_speedup"] = naive_s / fused_s;
  state.counters["scores_MiB"] = double(scores.size()) / double(1 << 20);
}

// ---- dispatch overhead -------------------------------------------------------------------

void BM_DispatchTinyOps(benchmark::State& state) {
  hal::Buffer x = must_allocate(1024), y = must_allocate(1024);
  hal::Stream s = must(env().gpu->create_stream());
  must(s.fill(x, 0, 1024, 0, 4));
  hal::OpAttributes a;
  a.alpha = 1.0f;
  a.beta = 1.0f;
  const hal::OpDescriptor op(hal::OpKind::kScale,
                             {hal::TensorRef::contiguous(x, hal::DType::kF32, {256})},
                             hal::TensorRef::contiguous(y, hal::DType::kF32, {256}), a);
  must(s.dispatch(op));
  must(s.synchronize());
  const int batch = 1000;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) must(s.dispatch(op));
    must(s.synchronize());
  }
  state.SetItemsProcessed(int64_t(state.iterations()) * batch);
}

}  // namespace

BENCHMARK(BM_MatmulHalVsCublasLt)
    ->Arg(8192)
    ->Arg(4096)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);
BENCHMARK(BM_CopyD2D)
    ->Arg(1024)
    ->Arg(64)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond)
    ->MinTime(0.5);
BENCHMARK(BM_Attention)
    ->Args({1, 8192})
    ->Args({1, 32768})
    ->Args({2048, 2048})
    ->Args({4096, 4096})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.5);
BENCHMARK(BM_DispatchTinyOps)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (!env().gpu) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    std::printf("hal_cuda_benchmark: no CUDA device (%s); nothing to measure\n",
                e == cudaSuccess ? "the runtime reports 0 GPUs" : cudaGetErrorString(e));
    return 0;
  }
  std::fprintf(stderr, "device: %s (%s)\n", env().gpu->id().c_str(),
               env().gpu->info().name.c_str());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

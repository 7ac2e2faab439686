// CPU backend benchmarks (Google Benchmark; built by default, never run by ctest).
//
//  BM_MatmulHalVsBlas/N    f32 N^3 matmul through the HAL (Platform -> cpu:0 -> stream
//                          dispatch + synchronize) and the same OpenBLAS instance called
//                          directly, alternating in one loop; counters give both rates and
//                          hal_over_blas (target >= 0.97 at N >= 1024).
//  BM_MatmulHal/N, BM_MatmulBlas/N   the two sides alone.
//  BM_DispatchTinyOps      enqueue-to-complete throughput of tiny ops on one stream
//                          (items_per_second = ops/s; target >= 1e6).
//  BM_DecodeMatmul/M/K/N/transpose_b/dtype   decode-shaped products through the HAL over
//                          a rotating set of weights larger than the last-level cache;
//                          GB/s of weights streamed and the fraction of cpu:0's measured
//                          memory bandwidth. BM_DecodeMatmulBlas: OpenBLAS on the same data.
//  BM_Attention/Sq/Skv      causal attention, 12 heads of 64 (decode and prefill).
//  BM_Gpt2SmallDecodeMatmuls  every matmul of one GPT-2-small decode step (12 layers of
//                          c_attn, c_proj, c_fc, mlp c_proj, then lm_head) on one stream.
//
// Run: build/bin/hal_cpu_benchmark [--benchmark_filter=...]; the thread budget is
// HAL_CPU_THREADS or the CPUs of the process (2 on the reference machine).
#include <benchmark/benchmark.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hal/hal.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Env {
  std::unique_ptr<hal::Platform> platform;
  hal::Device* cpu = nullptr;
  void (*sgemm)(int, int, int, int, int, int, float, const float*, int, const float*, int, float,
                float*, int) = nullptr;
  int (*blas_threads)() = nullptr;
  const char* (*blas_core)() = nullptr;
};

Env& env() {
  static Env* e = [] {
    auto* e = new Env();
    auto p = hal::Platform::create();
    if (!p.ok()) {
      std::fprintf(stderr, "platform: %s\n", p.status().to_string().c_str());
      std::exit(1);
    }
    e->platform = std::move(*p);
    auto d = e->platform->device("cpu:0");
    if (!d.ok()) {
      std::fprintf(stderr, "%s\n", d.status().to_string().c_str());
      std::exit(1);
    }
    e->cpu = *d;
    // The OpenBLAS instance the plugin loaded (and configured) — the same one, called
    // directly, is the baseline.
    if (void* h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD)) {
      e->sgemm = reinterpret_cast<decltype(e->sgemm)>(dlsym(h, "cblas_sgemm"));
      e->blas_threads = reinterpret_cast<int (*)()>(dlsym(h, "openblas_get_num_threads"));
      e->blas_core = reinterpret_cast<const char* (*)()>(dlsym(h, "openblas_get_corename"));
    }
    return e;
  }();
  return *e;
}

hal::Buffer must_allocate(uint64_t bytes) {
  auto b = env().cpu->allocate(bytes);
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(b).value();
}

// Values in [-1, 1) from a cheap generator (setup of the big weight sets dominated the
// run time with std::mt19937).
void fill_random(const hal::Buffer& b, hal::DType t, uint64_t count, uint32_t seed) {
  void* p = *b.map();
  uint64_t state = 0x9E3779B97F4A7C15ull * (seed + 1);
  for (uint64_t i = 0; i < count; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const float v = float(int32_t(state >> 32)) * 0x1p-31f;
    hal::store_from_float(p, t, int64_t(i), v);
  }
}

void check(const hal::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    std::exit(1);
  }
}

constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

// ---- matmul: HAL vs OpenBLAS -----------------------------------------------------------

// C[M, N] = A[M, K] @ B, B stored [K, N] or, with transpose_b, [N, K] (GGUF, Linear).
struct Matmul {
  int64_t m, k, n;
  bool transpose_b;
  hal::Buffer a, b, c_hal, c_blas;
  hal::Stream stream;
  hal::OpDescriptor op;

  Matmul(int64_t rows, int64_t inner, int64_t cols, bool tb)
      : m(rows), k(inner), n(cols), transpose_b(tb) {
    a = must_allocate(uint64_t(m * k) * 4);
    b = must_allocate(uint64_t(k * n) * 4);
    c_hal = must_allocate(uint64_t(m * n) * 4);
    c_blas = must_allocate(uint64_t(m * n) * 4);
    fill_random(a, hal::DType::kF32, uint64_t(m * k), 1);
    fill_random(b, hal::DType::kF32, uint64_t(k * n), 2);
    stream = env().cpu->create_stream().value();
    hal::OpAttributes attrs;
    attrs.transpose_b = tb;
    op = hal::OpDescriptor(
        hal::OpKind::kMatmul,
        {hal::TensorRef::contiguous(a, hal::DType::kF32, {m, k}),
         hal::TensorRef::contiguous(b, hal::DType::kF32, tb ? hal::Shape{n, k} : hal::Shape{k, n})},
        hal::TensorRef::contiguous(c_hal, hal::DType::kF32, {m, n}), attrs);
  }
  void run_hal() {
    check(stream.dispatch(op));
    check(stream.synchronize());
  }
  void run_blas() {
    env().sgemm(kRowMajor, kNoTrans, transpose_b ? kTrans : kNoTrans, int(m), int(n), int(k), 1.0f,
                static_cast<const float*>(*a.map()), int(k), static_cast<const float*>(*b.map()),
                transpose_b ? int(k) : int(n), 0.0f, static_cast<float*>(*c_blas.map()), int(n));
  }
  double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};

struct SquareMatmul : Matmul {
  explicit SquareMatmul(int64_t size) : Matmul(size, size, size, false) {}
};

void set_blas_label(benchmark::State& state) {
  char label[160];
  std::snprintf(label, sizeof label, "openblas core %s, %d threads",
                env().blas_core ? env().blas_core() : "?",
                env().blas_threads ? env().blas_threads() : 0);
  state.SetLabel(label);
}

// Google Benchmark 1.7's rate counters divide by CPU time (of the main thread, which
// here mostly waits); rates are therefore computed from measured wall time.
void set_rate(benchmark::State& state, const char* name, double amount_per_iteration,
              double seconds) {
  state.counters[name] =
      seconds > 0 ? amount_per_iteration * double(state.iterations()) / seconds : 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// The HAL's product and OpenBLAS's on the same operands, alternating in every iteration
// after one warm-up of each (page faults, thread pools): GFLOP/s of each from the median
// times, and their throughput ratio.
void time_hal_against_blas(benchmark::State& state, Matmul& mm) {
  mm.run_hal();
  mm.run_blas();
  std::vector<double> t_hal, t_blas;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    mm.run_hal();
    const auto t1 = Clock::now();
    mm.run_blas();
    const auto t2 = Clock::now();
    t_hal.push_back(std::chrono::duration<double>(t1 - t0).count());
    t_blas.push_back(std::chrono::duration<double>(t2 - t1).count());
  }
  const double hal_s = median(t_hal), blas_s = median(t_blas);
  state.counters["hal_GFLOPs"] = mm.flops() / hal_s * 1e-9;
  state.counters["blas_GFLOPs"] = mm.flops() / blas_s * 1e-9;
  state.counters["hal_over_blas"] = blas_s / hal_s;  // throughput ratio (median times)
  set_blas_label(state);
}

void BM_MatmulHalVsBlas(benchmark::State& state) {
  if (!env().sgemm) return state.SkipWithError("OpenBLAS is not loaded in this process");
  SquareMatmul mm(state.range(0));
  time_hal_against_blas(state, mm);
}
BENCHMARK(BM_MatmulHalVsBlas)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

// A model's prefill products, HAL and OpenBLAS alternating (median times): M tokens of a
// [K, N] layer, weights stored [N, K] (arg 3 = 1: GGUF, Llama's Linear) or [K, N] (0:
// Hugging Face GPT-2's Conv1D). GPT-2-small's qkv (768 -> 2304) and MLP down (3072 -> 768),
// Llama-7B's MLP up (4096 -> 11008), at 128, 512 and 2048 tokens.
void BM_PrefillHalVsBlas(benchmark::State& state) {
  if (!env().sgemm) return state.SkipWithError("OpenBLAS is not loaded in this process");
  Matmul mm(state.range(0), state.range(1), state.range(2), state.range(3) != 0);
  time_hal_against_blas(state, mm);
}
BENCHMARK(BM_PrefillHalVsBlas)
    ->ArgNames({"m", "k", "n", "nk"})
    ->ArgsProduct({{128, 512, 2048}, {768}, {2304}, {1, 0}})
    ->ArgsProduct({{128, 512, 2048}, {3072}, {768}, {1, 0}})
    ->ArgsProduct({{128, 512, 2048}, {4096}, {11008}, {1, 0}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);

void BM_MatmulHal(benchmark::State& state) {
  SquareMatmul mm(state.range(0));
  mm.run_hal();
  const auto t0 = Clock::now();
  for (auto _ : state) mm.run_hal();
  set_rate(state, "GFLOPs", mm.flops() * 1e-9,
           std::chrono::duration<double>(Clock::now() - t0).count());
}
BENCHMARK(BM_MatmulHal)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_MatmulBlas(benchmark::State& state) {
  if (!env().sgemm) return state.SkipWithError("OpenBLAS is not loaded in this process");
  SquareMatmul mm(state.range(0));
  mm.run_blas();
  const auto t0 = Clock::now();
  for (auto _ : state) mm.run_blas();
  set_rate(state, "GFLOPs", mm.flops() * 1e-9,
           std::chrono::duration<double>(Clock::now() - t0).count());
  set_blas_label(state);
}
BENCHMARK(BM_MatmulBlas)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(2048)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// ---- dispatch overhead -------------------------------------------------------------------

// range(0): ops per batch; range(1): 1 = keep command records.
void BM_DispatchTinyOps(benchmark::State& state) {
  const int64_t ops = state.range(0);
  hal::Buffer x = must_allocate(64), y = must_allocate(64);
  fill_random(x, hal::DType::kF32, 16, 3);
  auto stream = env().cpu->create_stream({.record_commands = state.range(1) != 0});
  check(stream.status());
  hal::OpAttributes attrs;
  attrs.alpha = 2.0f;
  const hal::OpDescriptor op(hal::OpKind::kScale,
                             {hal::TensorRef::contiguous(x, hal::DType::kF32, {16})},
                             hal::TensorRef::contiguous(y, hal::DType::kF32, {16}), attrs);
  for (auto _ : state) {
    for (int64_t i = 0; i < ops; ++i) check(stream->dispatch(op, uint64_t(i)));
    check(stream->synchronize());
    if (state.range(1)) benchmark::DoNotOptimize(stream->take_records());
  }
  state.SetItemsProcessed(state.iterations() * ops);
  state.SetLabel("scale of 16 floats, enqueue N then synchronize");
}
BENCHMARK(BM_DispatchTinyOps)
    ->Args({1000, 0})
    ->Args({10000, 0})
    ->Args({10000, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One op enqueued and synchronized at a time: the latency of a round trip.
void BM_DispatchRoundTrip(benchmark::State& state) {
  hal::Buffer x = must_allocate(64), y = must_allocate(64);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  const hal::OpDescriptor op(hal::OpKind::kScale,
                             {hal::TensorRef::contiguous(x, hal::DType::kF32, {16})},
                             hal::TensorRef::contiguous(y, hal::DType::kF32, {16}));
  for (auto _ : state) {
    check(stream->dispatch(op));
    check(stream->synchronize());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DispatchRoundTrip)->Unit(benchmark::kMicrosecond)->UseRealTime();

// ---- decode-shaped matmuls -----------------------------------------------------------------

uint64_t llc_bytes() {
  const uint64_t sram = env().cpu->info().sram_bytes;
  return sram > 0 ? sram : (64ull << 20);
}

// Enough copies of a weight matrix that cycling through them never hits in cache.
int copies_for(uint64_t weight_bytes) {
  const uint64_t target =
      std::min<uint64_t>(std::max<uint64_t>(2 * llc_bytes(), 256ull << 20), 1ull << 30);
  return int(std::max<uint64_t>(2, (target + weight_bytes - 1) / weight_bytes));
}

hal::DType dtype_arg(int64_t v) {
  return v == 0 ? hal::DType::kF32 : (v == 1 ? hal::DType::kF16 : hal::DType::kBF16);
}

struct DecodeSet {
  int64_t m, k, n;
  bool tb;
  hal::DType t;
  std::vector<hal::Buffer> weights;
  hal::Buffer x, y;
  uint64_t weight_bytes;

  DecodeSet(int64_t m_, int64_t k_, int64_t n_, bool tb_, hal::DType t_)
      : m(m_), k(k_), n(n_), tb(tb_), t(t_) {
    weight_bytes = uint64_t(k * n) * hal::dtype_size(t);
    const int copies = copies_for(weight_bytes);
    for (int i = 0; i < copies; ++i) {
      weights.push_back(must_allocate(weight_bytes));
      fill_random(weights.back(), t, uint64_t(k * n), uint32_t(10 + i));
    }
    x = must_allocate(uint64_t(m * k) * hal::dtype_size(t));
    y = must_allocate(uint64_t(m * n) * hal::dtype_size(t));
    fill_random(x, t, uint64_t(m * k), 4);
  }
  hal::OpDescriptor op(size_t i) const {
    hal::OpAttributes a;
    a.transpose_b = tb;
    return hal::OpDescriptor(
        hal::OpKind::kMatmul,
        {hal::TensorRef::contiguous(x, t, {m, k}),
         hal::TensorRef::contiguous(weights[i], t, tb ? hal::Shape{n, k} : hal::Shape{k, n})},
        hal::TensorRef::contiguous(y, t, {m, n}), a);
  }
};

// GB/s of weights streamed, and that as a fraction of cpu:0's memory bandwidth.
void report_roofline(benchmark::State& state, double bytes_per_iteration, double seconds) {
  set_rate(state, "GB/s", bytes_per_iteration * 1e-9, seconds);
  const double bw = env().cpu->info().memory_bandwidth_bytes_per_s;
  if (bw > 0) set_rate(state, "of_memory_bw", bytes_per_iteration / bw, seconds);
}

void BM_DecodeMatmul(benchmark::State& state) {
  DecodeSet set(state.range(0), state.range(1), state.range(2), state.range(3) != 0,
                dtype_arg(state.range(4)));
  auto stream = env().cpu->create_stream();
  check(stream.status());
  std::vector<hal::OpDescriptor> ops;
  for (size_t i = 0; i < set.weights.size(); ++i) ops.push_back(set.op(i));
  size_t next = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    check(stream->dispatch(ops[next]));
    check(stream->synchronize());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    next = (next + 1) % ops.size();
  }
  report_roofline(state, double(set.weight_bytes), seconds);
  state.SetLabel(std::string(hal::dtype_name(set.t)) + (set.tb ? " [N,K]^T" : " [K,N]") +
                 ", weights cycled over " + std::to_string(set.weights.size()) + " copies");
}

void BM_DecodeMatmulBlas(benchmark::State& state) {
  if (!env().sgemm) return state.SkipWithError("OpenBLAS is not loaded in this process");
  DecodeSet set(state.range(0), state.range(1), state.range(2), state.range(3) != 0,
                hal::DType::kF32);
  const int m = int(set.m), k = int(set.k), n = int(set.n);
  size_t next = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    env().sgemm(kRowMajor, kNoTrans, set.tb ? kTrans : kNoTrans, m, n, k, 1.0f,
                static_cast<const float*>(*set.x.map()), k,
                static_cast<const float*>(*set.weights[next].map()), set.tb ? k : n, 0.0f,
                static_cast<float*>(*set.y.map()), n);
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    next = (next + 1) % set.weights.size();
  }
  report_roofline(state, double(set.weight_bytes), seconds);
  set_blas_label(state);
}

void decode_shapes(benchmark::internal::Benchmark* b, bool all_dtypes) {
  // GPT-2 small: c_attn 768x2304, attn c_proj 768x768, c_fc 768x3072, mlp c_proj 3072x768,
  // lm_head [50257, 768]^T; M = 1 (one token) to 8 (a small batch).
  const int64_t shapes[][3] = {
      {768, 2304, 0}, {768, 768, 0}, {768, 3072, 0}, {3072, 768, 0}, {768, 50257, 1}};
  for (int64_t m : {1, 4, 8})
    for (const auto& s : shapes)
      for (int64_t t = 0; t < (all_dtypes ? 3 : 1); ++t) {
        if (t > 0 && m != 1) continue;
        b->Args({m, s[0], s[1], s[2], t});
      }
  b->ArgNames({"M", "K", "N", "tb", "dtype"});
  b->Unit(benchmark::kMicrosecond)->UseRealTime();
}
BENCHMARK(BM_DecodeMatmul)->Apply([](benchmark::internal::Benchmark* b) {
  decode_shapes(b, true);
});
BENCHMARK(BM_DecodeMatmulBlas)->Apply([](benchmark::internal::Benchmark* b) {
  decode_shapes(b, false);
});

// Every matmul of one GPT-2-small decode step, enqueued back to back on one stream.
void BM_Gpt2SmallDecodeMatmuls(benchmark::State& state) {
  const hal::DType t = dtype_arg(state.range(0));
  const int64_t d = 768, layers = 12, vocab = 50257;
  const uint64_t esz = hal::dtype_size(t);
  struct Layer {
    hal::Buffer attn, proj, fc, mlp;
  };
  std::vector<Layer> w(layers);
  for (Layer& l : w) {
    l.attn = must_allocate(uint64_t(d * 3 * d) * esz);
    l.proj = must_allocate(uint64_t(d * d) * esz);
    l.fc = must_allocate(uint64_t(d * 4 * d) * esz);
    l.mlp = must_allocate(uint64_t(4 * d * d) * esz);
    fill_random(l.attn, t, uint64_t(d * 3 * d), 1);
    fill_random(l.proj, t, uint64_t(d * d), 2);
    fill_random(l.fc, t, uint64_t(d * 4 * d), 3);
    fill_random(l.mlp, t, uint64_t(4 * d * d), 4);
  }
  hal::Buffer wte = must_allocate(uint64_t(vocab * d) * esz);
  fill_random(wte, t, uint64_t(vocab * d), 5);
  hal::Buffer x = must_allocate(uint64_t(4 * d) * esz), y = must_allocate(uint64_t(vocab) * esz);
  fill_random(x, t, uint64_t(4 * d), 6);
  auto mm = [&](const hal::Buffer& wb, int64_t k, int64_t n, bool tb) {
    hal::OpAttributes a;
    a.transpose_b = tb;
    return hal::OpDescriptor(
        hal::OpKind::kMatmul,
        {hal::TensorRef::contiguous(x, t, {1, k}),
         hal::TensorRef::contiguous(wb, t, tb ? hal::Shape{n, k} : hal::Shape{k, n})},
        hal::TensorRef::contiguous(y, t, {1, n}), a);
  };
  std::vector<hal::OpDescriptor> ops;
  double bytes = 0;
  for (const Layer& l : w) {
    ops.push_back(mm(l.attn, d, 3 * d, false));
    ops.push_back(mm(l.proj, d, d, false));
    ops.push_back(mm(l.fc, d, 4 * d, false));
    ops.push_back(mm(l.mlp, 4 * d, d, false));
    bytes += double(12 * d * d) * double(esz);
  }
  ops.push_back(mm(wte, d, vocab, true));
  bytes += double(vocab * d) * double(esz);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (const auto& op : ops) check(stream->dispatch(op));
    check(stream->synchronize());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  report_roofline(state, bytes, seconds);
  set_rate(state, "tokens/s", 1.0, seconds);
  state.SetLabel(std::string(hal::dtype_name(t)) + ", " + std::to_string(ops.size()) +
                 " matmuls, " + std::to_string(int(bytes / 1e6)) + " MB of weights");
}
BENCHMARK(BM_Gpt2SmallDecodeMatmuls)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->ArgName("dtype")
    ->Unit(benchmark::kMillisecond);

// ---- attention (for information: GPT-2-small heads) ---------------------------------------

// range(0): query length (1 = decode), range(1): cached keys; 12 heads of 64, causal.
void BM_Attention(benchmark::State& state) {
  const int64_t sq = state.range(0), skv = state.range(1), h = 12, d = 64;
  hal::Buffer q = must_allocate(uint64_t(sq * h * d) * 4),
              k = must_allocate(uint64_t(skv * h * d) * 4),
              v = must_allocate(uint64_t(skv * h * d) * 4),
              o = must_allocate(uint64_t(sq * h * d) * 4);
  fill_random(q, hal::DType::kF32, uint64_t(sq * h * d), 1);
  fill_random(k, hal::DType::kF32, uint64_t(skv * h * d), 2);
  fill_random(v, hal::DType::kF32, uint64_t(skv * h * d), 3);
  hal::OpAttributes a;
  a.causal = true;
  const hal::OpDescriptor op(hal::OpKind::kAttention,
                             {hal::TensorRef::contiguous(q, hal::DType::kF32, {1, sq, h, d}),
                              hal::TensorRef::contiguous(k, hal::DType::kF32, {1, skv, h, d}),
                              hal::TensorRef::contiguous(v, hal::DType::kF32, {1, skv, h, d})},
                             hal::TensorRef::contiguous(o, hal::DType::kF32, {1, sq, h, d}), a);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  const hal::OpCost cost = hal::analytic_cost(op.spec());
  const auto t0 = Clock::now();
  for (auto _ : state) {
    check(stream->dispatch(op));
    check(stream->synchronize());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  set_rate(state, "GFLOPs", cost.flops * 1e-9, seconds);
  set_rate(state, "GB/s", double(cost.bytes_read) * 1e-9, seconds);
}
BENCHMARK(BM_Attention)
    ->Args({1, 64})
    ->Args({1, 1024})
    ->Args({1, 4096})
    ->Args({128, 128})
    ->Args({1024, 1024})
    ->ArgNames({"Sq", "Skv"})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const hal::DeviceInfo& info = env().cpu->info();
  std::printf(
      "cpu:0 %s: memory bandwidth %.1f GB/s (%s), f32 peak %.0f GFLOP/s (%s)\n", info.name.c_str(),
      info.memory_bandwidth_bytes_per_s * 1e-9, info.property("source.memory_bandwidth").c_str(),
      info.peak_flops_for(hal::DType::kF32) * 1e-9, info.property("source.peak_flops").c_str());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  env().platform.reset();
  return 0;
}

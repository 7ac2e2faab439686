// CPU benchmarks of products with quantized weights (Google Benchmark; built by default,
// never run by ctest), through the HAL on cpu:0.
//
//  BM_ReadBandwidth                the host's read bandwidth (hal/memory_bandwidth.h) with the CPU
//                                  backend's thread count: the roofline of decode.
//  BM_QuantDecode/fmt/M/K/N        M rows (decode: 1..8) against N x K weights in `fmt`,
//                                  cycled over copies larger than the last-level cache:
//                                  weight GB/s, and the fraction of BM_ReadBandwidth's
//                                  figure (measured once per process, before the runs).
//  BM_QuantDecodeInCache/fmt/M/K/N M = 1 or 4 rows against weights that stay in cache:
//                                  the kernel's own weight GB/s (what decode could reach;
//                                  M = 4: a batch of four decoding).
//  BM_QuantPrefill/fmt/M/K/N       M = 128 rows: GFLOP/s (weights stay in cache).
//  BM_PrefillColdWeights/fmt/M/K/N as BM_QuantPrefill, weights cycled over copies larger
//                                  than the last-level cache: a model's prefill, which
//                                  reads each weight once from memory.
//  BM_QuantGpt2Step/fmt            every matmul of one GPT-2-small decode step (12 layers of
//                                  c_attn, c_proj, c_fc, mlp c_proj, then the tied lm_head)
//                                  with weights in `fmt`: tokens/s, and the fraction of the
//                                  read bandwidth probed right before each timed round
//                                  (of_probe, median over rounds; see the body for why).
// `fmt` indexes kFormats below (f32, f16, bf16, then the quantized formats).
//
// Run: build/bin/hal_cpu_quant_benchmark [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "hal/hal.h"
#include "hal/memory_bandwidth.h"
#include "hal/quant_reference.h"

namespace {

using Clock = std::chrono::steady_clock;

const hal::DType kFormats[] = {
    hal::DType::kF32,    hal::DType::kF16,           hal::DType::kBF16, hal::DType::kQ8_0,
    hal::DType::kQ4_0,   hal::DType::kQ4_1,          hal::DType::kQ5_0, hal::DType::kQ5_1,
    hal::DType::kQ4_K,   hal::DType::kQ5_K,          hal::DType::kQ6_K, hal::DType::kI8Channel,
    hal::DType::kI4G128, hal::DType::kFP8E4M3Channel};

struct Env {
  std::unique_ptr<hal::Platform> platform;
  hal::Device* cpu = nullptr;
  // The host's read-bandwidth probe with the CPU backend's thread count, its buffer mapped
  // once for the process: BM_QuantGpt2Step probes again before every round.
  std::unique_ptr<hal::MemoryBandwidthProbe> probe;
  double read_bw = 0;  // best of 5 passes at start-up (0 when the buffer could not be mapped)
};

void check(const hal::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    std::exit(1);
  }
}

Env& env() {
  static Env* e = [] {
    auto* x = new Env();
    auto p = hal::Platform::create();
    check(p.status());
    x->platform = std::move(*p);
    auto d = x->platform->device("cpu:0");
    check(d.status());
    x->cpu = *d;
    const char* t = std::getenv("HAL_CPU_THREADS");
    x->probe = std::make_unique<hal::MemoryBandwidthProbe>(
        hal::bandwidth_buffer_bytes(x->cpu->info().sram_bytes),
        t && std::atoi(t) > 0 ? std::atoi(t) : int(std::thread::hardware_concurrency()));
    x->read_bw = x->probe->measure(5).read_best;
    return x;
  }();
  return *e;
}

// `rows` x `k` weights in format t (random N(0, 0.02)).
std::vector<uint8_t> quantized_weights(hal::DType t, int64_t rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> v(size_t(rows * k));
  for (float& x : v) x = dist(rng);
  return hal::reference::quantize_rows(t, v.data(), rows, k);
}

hal::Buffer upload(const std::vector<uint8_t>& q) {
  auto b = env().cpu->allocate(q.size());
  check(b.status());
  // Uploaded through a stream, as a session uploads a model's weights: the CPU backend
  // keeps its faster decode copies (cpu_weight_cache.h) only for buffers never mapped.
  auto stream = env().cpu->create_stream();
  check(stream.status());
  check(stream->copy_from_host(q.data(), *b, 0, q.size()));
  check(stream->synchronize());
  return std::move(*b);
}

hal::Buffer weights(hal::DType t, int64_t rows, int64_t k, uint32_t seed) {
  return upload(quantized_weights(t, rows, k, seed));
}

hal::Buffer activations(int64_t n) {
  auto b = env().cpu->allocate(uint64_t(n) * 4);
  check(b.status());
  float* p = static_cast<float*>(*b->map());
  for (int64_t i = 0; i < n; ++i) p[i] = float((i * 37) % 101) / 50.0f - 1.0f;
  return std::move(*b);
}

hal::OpDescriptor product(const hal::Buffer& x, const hal::Buffer& w, const hal::Buffer& y,
                          hal::DType t, int64_t m, int64_t k, int64_t n) {
  hal::OpAttributes a;
  a.transpose_b = true;
  return hal::OpDescriptor(hal::OpKind::kMatmul,
                           {hal::TensorRef::contiguous(x, hal::DType::kF32, {m, k}),
                            hal::TensorRef::contiguous(w, t, {n, k})},
                           hal::TensorRef::contiguous(y, hal::DType::kF32, {m, n}), a);
}

void BM_ReadBandwidth(benchmark::State& state) {
  for (auto _ : state) state.SetIterationTime(1.0);
  state.counters["GB/s"] = env().read_bw * 1e-9;
}
BENCHMARK(BM_ReadBandwidth)->Iterations(1)->UseManualTime();

// Copies of `rows` x `k` weights in format t, together 4x the last-level cache (at least
// 2): cycled through, each is read from memory, as a model reads its weights.
std::vector<hal::Buffer> cold_weights(hal::DType t, int64_t rows, int64_t k) {
  const uint64_t bytes = hal::TensorDesc::contiguous(t, hal::Shape{rows, k}).bytes();
  const uint64_t llc = std::max<uint64_t>(env().cpu->info().sram_bytes, 32u << 20);
  const int copies = int(std::max<uint64_t>(2, (4 * llc + bytes - 1) / bytes));
  // One quantization, uploaded to every copy: the reference's K-quant search takes
  // minutes on a [50257, 768] matrix, and google-benchmark runs the body again for every
  // repetition. (Equal contents read from different memory stream the same.)
  const std::vector<uint8_t> q = quantized_weights(t, rows, k, 0);
  std::vector<hal::Buffer> w;
  for (int i = 0; i < copies; ++i) w.push_back(upload(q));
  return w;
}

// The benchmark's timed loop: one product of x and the next of the weights `w` per
// iteration, each to completion; returns the seconds they took together.
double time_cycled_products(benchmark::State& state, hal::Stream& stream, const hal::Buffer& x,
                            const std::vector<hal::Buffer>& w, const hal::Buffer& y, hal::DType t,
                            int64_t m, int64_t k, int64_t n) {
  size_t next = 0;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    check(stream.dispatch(product(x, w[next], y, t, m, k, n)));
    check(stream.synchronize());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    next = (next + 1) % w.size();
  }
  return seconds;
}

void BM_QuantDecode(benchmark::State& state) {
  const hal::DType t = kFormats[state.range(0)];
  const int64_t m = state.range(1), k = state.range(2), n = state.range(3);
  const uint64_t bytes = hal::TensorDesc::contiguous(t, hal::Shape{n, k}).bytes();
  const std::vector<hal::Buffer> w = cold_weights(t, n, k);
  hal::Buffer x = activations(m * k), y = activations(m * n);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  // Each weight once before timing: the backend makes its decode copy of a weight at the
  // weight's first product (cpu_weight_cache.h), which a model pays once, not per token.
  for (const hal::Buffer& b : w) check(stream->dispatch(product(x, b, y, t, m, k, n)));
  check(stream->synchronize());
  const double seconds = time_cycled_products(state, *stream, x, w, y, t, m, k, n);
  const double gbs = double(bytes) * double(state.iterations()) / seconds;
  state.counters["GB/s"] = gbs * 1e-9;
  state.counters["of_read_bw"] = gbs / env().read_bw;
  state.SetLabel(std::string(hal::dtype_name(t)));
}
BENCHMARK(BM_QuantDecode)->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t f = 0; f < int64_t(std::size(kFormats)); ++f)
    for (int64_t m : {1, 4})
      for (const auto& s : {std::pair<int64_t, int64_t>{768, 3072}, {3072, 768}, {768, 50257}})
        b->Args({f, m, s.first, s.second});
  b->ArgNames({"fmt", "M", "K", "N"})->Unit(benchmark::kMicrosecond)->UseRealTime();
});

void BM_QuantPrefill(benchmark::State& state) {
  const hal::DType t = kFormats[state.range(0)];
  const int64_t m = state.range(1), k = state.range(2), n = state.range(3);
  hal::Buffer w = weights(t, n, k, 1), x = activations(m * k), y = activations(m * n);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  const hal::OpDescriptor op = product(x, w, y, t, m, k, n);
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    check(stream->dispatch(op));
    check(stream->synchronize());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  state.counters["GFLOP/s"] = 2.0 * double(m * n * k) * double(state.iterations()) / seconds * 1e-9;
  state.SetLabel(std::string(hal::dtype_name(t)));
}
BENCHMARK(BM_QuantPrefill)->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t f = 0; f < int64_t(std::size(kFormats)); ++f) b->Args({f, 128, 768, 3072});
  b->ArgNames({"fmt", "M", "K", "N"})->Unit(benchmark::kMillisecond)->UseRealTime();
});

void BM_PrefillColdWeights(benchmark::State& state) {
  const hal::DType t = kFormats[state.range(0)];
  const int64_t m = state.range(1), k = state.range(2), n = state.range(3);
  const std::vector<hal::Buffer> w = cold_weights(t, n, k);
  hal::Buffer x = activations(m * k), y = activations(m * n);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  const double seconds = time_cycled_products(state, *stream, x, w, y, t, m, k, n);
  state.counters["GFLOP/s"] = 2.0 * double(m * n * k) * double(state.iterations()) / seconds * 1e-9;
  state.SetLabel(std::string(hal::dtype_name(t)));
}
BENCHMARK(BM_PrefillColdWeights)->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t f : {0, 1, 3, 4})  // f32, f16, q8_0, q4_0
    for (const auto& s : {std::pair<int64_t, int64_t>{768, 2304}, {768, 3072}, {3072, 768}})
      b->Args({f, 128, s.first, s.second});
  b->ArgNames({"fmt", "M", "K", "N"})->Unit(benchmark::kMillisecond)->UseRealTime();
});

// The kernels' own rate, with the memory system out of the way: one row against the same
// N x K weights 32 times per synchronize (768 x 768: a few hundred KB for the quantized
// formats, in the cores' L2 caches; 1.2 MB of f16 and 2.4 MB of f32, in the L3). Weight GB/s far
// above BM_QuantDecode's says the format streams at the memory's rate; near it, decode is bound by
// the kernel (instructions per weight byte).
void BM_QuantDecodeInCache(benchmark::State& state) {
  const hal::DType t = kFormats[state.range(0)];
  const int64_t m = state.range(1), k = state.range(2), n = state.range(3);
  const uint64_t bytes = hal::TensorDesc::contiguous(t, hal::Shape{n, k}).bytes();
  const hal::Buffer w = weights(t, n, k, 7);
  hal::Buffer x = activations(m * k), y = activations(m * n);
  auto stream = env().cpu->create_stream();
  check(stream.status());
  const hal::OpDescriptor op = product(x, w, y, t, m, k, n);
  check(stream->dispatch(op));  // the decode copy, made once
  check(stream->synchronize());
  constexpr int kRepeats = 32;
  double seconds = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    for (int r = 0; r < kRepeats; ++r) check(stream->dispatch(op));
    check(stream->synchronize());
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double gbs = double(bytes) * kRepeats * double(state.iterations()) / seconds;
  state.counters["GB/s"] = gbs * 1e-9;
  state.counters["of_read_bw"] = gbs / env().read_bw;
  state.SetLabel(std::string(hal::dtype_name(t)));
}
BENCHMARK(BM_QuantDecodeInCache)->Apply([](benchmark::internal::Benchmark* b) {
  for (int64_t f = 0; f < int64_t(std::size(kFormats)); ++f)
    for (int64_t m : {1, 4}) b->Args({f, m, 768, 768});
  b->ArgNames({"fmt", "M", "K", "N"})->Unit(benchmark::kMicrosecond)->UseRealTime();
});

void BM_QuantGpt2Step(benchmark::State& state) {
  const hal::DType t = kFormats[state.range(0)];
  const int64_t d = 768, layers = 12, vocab = 50257;
  std::vector<hal::Buffer> keep;
  keep.reserve(size_t(layers * 4 + 1));  // the ops refer to these buffers: no reallocation
  hal::Buffer x = activations(4 * d), y = activations(vocab);
  std::vector<hal::OpDescriptor> ops;
  double bytes = 0;
  for (int64_t l = 0; l < layers; ++l)
    for (const auto& [k, n] :
         {std::pair<int64_t, int64_t>{d, 3 * d}, {d, d}, {d, 4 * d}, {4 * d, d}}) {
      keep.push_back(weights(t, n, k, uint32_t(l * 4 + k)));
      ops.push_back(product(x, keep.back(), y, t, 1, k, n));
      bytes += double(hal::TensorDesc::contiguous(t, hal::Shape{n, k}).bytes());
    }
  keep.push_back(weights(t, vocab, d, 99));
  ops.push_back(product(x, keep.back(), y, t, 1, d, vocab));
  bytes += double(hal::TensorDesc::contiguous(t, hal::Shape{vocab, d}).bytes());
  auto stream = env().cpu->create_stream();
  check(stream.status());
  auto step = [&] {
    for (const auto& op : ops) check(stream->dispatch(op));
    check(stream->synchronize());
  };
  step();  // the decode copies, as above
  // The host's bandwidth drifts within seconds (1.5x between probes 10 s apart), so a
  // fraction against one probe at the start compares two machine states. Each round: a
  // probe (best of two passes, as halctl bench probes: one pass read below what the f32
  // steps then streamed, 1.05 of it), then kWarmSteps untimed steps, then kTimedSteps timed
  // ones, against that probe. The untimed steps are there because the probe leaves the
  // last-level cache full of its own lines: paired in one process, the 1st, 2nd, 3rd and
  // 4th steps after a probe read q4_0 weights at 20.3, 22.0, 22.7 and 23.8 GB/s (a 69 MB
  // step against a 32 MB L3 keeps some of its lines from one step to the next), and a
  // model decoding token after token runs in that steady state.
  constexpr int kWarmSteps = 3, kTimedSteps = 4;
  const hal::MemoryBandwidthProbe& probe = *env().probe;
  double seconds = 0;
  int64_t steps = 0;
  std::vector<double> of_probe;
  for (auto _ : state) {
    state.PauseTiming();
    const double bw = probe.ok() ? probe.measure(2).read_best : 0;
    for (int w = 0; w < kWarmSteps; ++w) step();
    state.ResumeTiming();
    const auto t0 = Clock::now();
    for (int i = 0; i < kTimedSteps; ++i) step();
    const double round = std::chrono::duration<double>(Clock::now() - t0).count();
    seconds += round;
    steps += kTimedSteps;
    if (bw > 0) of_probe.push_back(bytes * kTimedSteps / round / bw);
  }
  const double per = seconds / double(steps);
  state.counters["tokens/s"] = 1.0 / per;
  state.counters["GB/s"] = bytes / per * 1e-9;
  if (!of_probe.empty()) {
    std::nth_element(of_probe.begin(), of_probe.begin() + of_probe.size() / 2, of_probe.end());
    state.counters["of_probe"] = of_probe[of_probe.size() / 2];
  }
  state.SetLabel(std::string(hal::dtype_name(t)) + ", " + std::to_string(int(bytes / 1e6)) +
                 " MB of weights");
}
BENCHMARK(BM_QuantGpt2Step)
    ->DenseRange(0, int64_t(std::size(kFormats)) - 1)
    ->ArgName("fmt")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

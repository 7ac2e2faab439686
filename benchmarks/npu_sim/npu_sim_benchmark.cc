// NPU simulator benchmarks (Google Benchmark; built by default, never run by ctest).
//
// Simulated (times are the simulator's, reported as manual time; wall time is
// irrelevant). Ratios are against the preset's own peaks, measured in the same run:
//  BM_SimMatmul/<preset>/<dtype>/N   N^3 matmul on virtual buffers: sim_tflops and
//                                    achieved_over_peak (matrix-engine peak of the dtype).
//  BM_SimCopy/<preset>/<dir>/bytes   host<->device copies: sim_gbps, over_link_peak.
//  BM_SimDecodeStep/<preset>/<model> one decode token of a Llama-shaped model (bf16
//                                    weights, KV cache of 2048 tokens, batch 1) in
//                                    timing-only mode: tokens_per_s and
//                                    over_bandwidth_roof = time of the weight+KV bytes at
//                                    peak bandwidth / simulated time.
// Host (how fast the simulator itself runs on this machine; wall time):
//  BM_HostMatmul/N                   f32 N^3 matmul computed by the simulator (bf16 mode):
//                                    host_gflops.
//  BM_HostAttentionDecode/ctx        one decode query over ctx keys, 32 heads, GQA 8.
//  BM_DispatchTinyOps                enqueue-to-complete of tiny ops on one stream
//                                    (items_per_second = simulated commands per second).
//
// Run: build/bin/hal_npu_sim_benchmark [--benchmark_filter=...].
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hal/hal.h"

namespace {

using namespace hal;

Device* npu(const std::string& preset, bool timing_only) {
  static std::map<std::string, std::unique_ptr<Platform>> platforms;
  const std::string key = preset + (timing_only ? "/timing" : "/functional");
  auto it = platforms.find(key);
  if (it == platforms.end()) {
    PlatformOptions o;
    o.only_plugins = {"npu_sim"};
    o.plugin_options["npu_sim"] = {{"devices", preset},
                                   {"timing_only", timing_only ? "true" : "false"}};
    auto p = Platform::create(o);
    if (!p.ok() || (*p)->devices().empty()) {
      std::fprintf(stderr, "no npu_sim device for %s: %s\n", preset.c_str(),
                   p.ok() ? "plugin rejected" : p.status().to_string().c_str());
      std::exit(1);
    }
    it = platforms.emplace(key, std::move(*p)).first;
  }
  return it->second->devices()[0];
}

Buffer must_alloc(Device* d, uint64_t size, MemoryKind kind = MemoryKind::kDevice) {
  auto b = d->allocate(size, kind);
  if (!b.ok()) {
    std::fprintf(stderr, "%s\n", b.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(*b);
}

void must(const Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    std::exit(1);
  }
}

OpDescriptor matmul(const Buffer& a, const Buffer& b, const Buffer& c, DType t, int64_t m,
                    int64_t k, int64_t n, bool transpose_b = false) {
  OpAttributes at;
  at.transpose_b = transpose_b;
  return OpDescriptor(OpKind::kMatmul,
                      {TensorRef::contiguous(a, t, {m, k}),
                       TensorRef::contiguous(b, t, transpose_b ? Shape{n, k} : Shape{k, n})},
                      TensorRef::contiguous(c, t, {m, n}), at);
}

// Sum of the simulated durations of the commands `enqueue` issues.
double simulated_seconds(Stream& s) {
  must(s.synchronize());
  double t = 0;
  for (const CommandRecord& r : s.take_records()) t += r.duration_s();
  return t;
}

void BM_SimMatmul(benchmark::State& state, const char* preset, DType dtype) {
  Device* d = npu(preset, true);
  const int64_t n = state.range(0);
  const uint64_t bytes = uint64_t(n * n) * dtype_size(dtype);
  Buffer a = must_alloc(d, bytes, MemoryKind::kVirtual),
         b = must_alloc(d, bytes, MemoryKind::kVirtual),
         c = must_alloc(d, bytes, MemoryKind::kVirtual);
  auto s = d->create_stream({.record_commands = true});
  double total = 0;
  for (auto _ : state) {
    must(s->dispatch(matmul(a, b, c, dtype, n, n, n)));
    const double t = simulated_seconds(*s);
    total += t;
    state.SetIterationTime(t);
  }
  const double per = total / double(state.iterations());
  const double flops = 2.0 * double(n) * double(n) * double(n);
  state.counters["sim_tflops"] = flops / per * 1e-12;
  state.counters["achieved_over_peak"] = flops / per / d->info().peak_flops_for(dtype);
}

void BM_SimCopy(benchmark::State& state, const char* preset, bool to_device) {
  Device* d = npu(preset, true);
  const uint64_t size = uint64_t(state.range(0));
  Buffer b = must_alloc(d, size);  // timing-only: no storage, nothing copied on the host
  std::vector<char> host(size);
  auto s = d->create_stream({.record_commands = true});
  double total = 0;
  for (auto _ : state) {
    must(to_device ? s->copy_from_host(host.data(), b, 0, size)
                   : s->copy_to_host(b, 0, host.data(), size));
    const double t = simulated_seconds(*s);
    total += t;
    state.SetIterationTime(t);
  }
  const double rate = double(size) * double(state.iterations()) / total;
  state.counters["sim_gbps"] = rate * 1e-9;
  state.counters["over_link_peak"] = rate / d->info().host_link().bandwidth_bytes_per_s;
}

struct LlamaShape {
  int64_t layers, hidden, heads, kv_heads, head_dim, ffn, vocab;
};
const LlamaShape kLlama1B = {16, 2048, 32, 8, 64, 8192, 128256};
const LlamaShape kLlama8B = {32, 4096, 32, 8, 128, 14336, 128256};

void BM_SimDecodeStep(benchmark::State& state, const char* preset, LlamaShape m) {
  Device* d = npu(preset, true);
  const DType t = DType::kBF16;
  const int64_t ctx = 2048, kv = m.kv_heads * m.head_dim, q = m.heads * m.head_dim;
  // Per layer: fused QKV, O, fused gate+up, down; then the LM head.
  const int64_t wqkv = m.hidden * (q + 2 * kv), wo = q * m.hidden, wgu = m.hidden * 2 * m.ffn,
                wd = m.ffn * m.hidden;
  const uint64_t layer_weights = uint64_t(wqkv + wo + wgu + wd) * 2;
  const uint64_t kv_cache = uint64_t(ctx * kv * 2) * 2;  // K and V per layer
  Buffer weights = must_alloc(d, uint64_t(m.layers) * layer_weights, MemoryKind::kVirtual);
  Buffer head = must_alloc(d, uint64_t(m.hidden * m.vocab) * 2, MemoryKind::kVirtual);
  Buffer cache = must_alloc(d, uint64_t(m.layers) * kv_cache, MemoryKind::kVirtual);
  Buffer x = must_alloc(d, uint64_t(2 * m.ffn) * 2, MemoryKind::kVirtual);
  Buffer y = must_alloc(d, uint64_t(m.vocab) * 4, MemoryKind::kVirtual);
  Buffer gamma = must_alloc(d, uint64_t(m.hidden) * 2, MemoryKind::kVirtual);
  auto s = d->create_stream({.record_commands = true});
  double total = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    for (int64_t l = 0; l < m.layers; ++l) {
      const uint64_t w0 = uint64_t(l) * layer_weights, c0 = uint64_t(l) * kv_cache;
      auto mm = [&](uint64_t off, int64_t k, int64_t n) {
        OpDescriptor op(
            OpKind::kMatmul,
            {TensorRef::contiguous(x, t, {1, k}), TensorRef::contiguous(weights, t, {n, k}, off)},
            TensorRef::contiguous(y, t, {1, n}));
        op.attrs.transpose_b = true;
        must(s->dispatch(op));
      };
      must(s->dispatch(OpDescriptor(
          OpKind::kRmsNorm,
          {TensorRef::contiguous(x, t, {1, m.hidden}), TensorRef::contiguous(gamma, t, {m.hidden})},
          TensorRef::contiguous(y, t, {1, m.hidden}))));
      mm(w0, m.hidden, q + 2 * kv);
      OpAttributes causal;
      causal.causal = true;
      must(s->dispatch(OpDescriptor(
          OpKind::kAttention,
          {TensorRef::contiguous(x, t, {1, 1, m.heads, m.head_dim}),
           TensorRef::contiguous(cache, t, {1, ctx, m.kv_heads, m.head_dim}, c0),
           TensorRef::contiguous(cache, t, {1, ctx, m.kv_heads, m.head_dim}, c0 + kv_cache / 2)},
          TensorRef::contiguous(y, t, {1, 1, m.heads, m.head_dim}), causal)));
      mm(w0 + uint64_t(wqkv) * 2, q, m.hidden);
      must(s->dispatch(OpDescriptor(
          OpKind::kRmsNorm,
          {TensorRef::contiguous(x, t, {1, m.hidden}), TensorRef::contiguous(gamma, t, {m.hidden})},
          TensorRef::contiguous(y, t, {1, m.hidden}))));
      mm(w0 + uint64_t(wqkv + wo) * 2, m.hidden, 2 * m.ffn);
      must(s->dispatch(OpDescriptor(OpKind::kSilu, {TensorRef::contiguous(x, t, {1, m.ffn})},
                                    TensorRef::contiguous(y, t, {1, m.ffn}))));
      mm(w0 + uint64_t(wqkv + wo + wgu) * 2, m.ffn, m.hidden);
    }
    OpDescriptor lm(OpKind::kMatmul,
                    {TensorRef::contiguous(x, t, {1, m.hidden}),
                     TensorRef::contiguous(head, t, {m.vocab, m.hidden})},
                    TensorRef::contiguous(y, t, {1, m.vocab}));
    lm.attrs.transpose_b = true;
    must(s->dispatch(lm));
    must(s->synchronize());
    double step = 0;
    bytes = 0;
    for (const CommandRecord& r : s->take_records()) {
      step += r.duration_s();
      bytes += r.bytes_read + r.bytes_written;
    }
    total += step;
    state.SetIterationTime(step);
  }
  const double per = total / double(state.iterations());
  state.counters["tokens_per_s"] = 1.0 / per;
  state.counters["gb_per_token"] = double(bytes) * 1e-9;
  state.counters["over_bandwidth_roof"] =
      double(bytes) / d->info().memory_bandwidth_bytes_per_s / per;
}

void BM_HostMatmul(benchmark::State& state) {
  Device* d = npu("atom", false);
  const int64_t n = state.range(0);
  const uint64_t bytes = uint64_t(n * n) * 4;
  Buffer a = must_alloc(d, bytes), b = must_alloc(d, bytes), c = must_alloc(d, bytes);
  std::vector<float> host(size_t(n * n), 0.25f);
  auto s = d->create_stream();
  must(s->copy_from_host(host.data(), a, 0, bytes));
  must(s->copy_from_host(host.data(), b, 0, bytes));
  must(s->synchronize());
  for (auto _ : state) {
    must(s->dispatch(matmul(a, b, c, DType::kF32, n, n, n)));
    must(s->synchronize());
  }
  state.counters["host_gflops"] = benchmark::Counter(2.0 * double(n) * double(n) * double(n) * 1e-9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

void BM_HostAttentionDecode(benchmark::State& state) {
  Device* d = npu("atom", false);
  const int64_t ctx = state.range(0), hq = 32, hkv = 8, dim = 128;
  Buffer q = must_alloc(d, uint64_t(hq * dim) * 2),
         k = must_alloc(d, uint64_t(ctx * hkv * dim) * 2),
         v = must_alloc(d, uint64_t(ctx * hkv * dim) * 2),
         o = must_alloc(d, uint64_t(hq * dim) * 2);
  auto s = d->create_stream();
  OpAttributes a;
  a.causal = true;
  const OpDescriptor op(OpKind::kAttention,
                        {TensorRef::contiguous(q, DType::kBF16, {1, 1, hq, dim}),
                         TensorRef::contiguous(k, DType::kBF16, {1, ctx, hkv, dim}),
                         TensorRef::contiguous(v, DType::kBF16, {1, ctx, hkv, dim})},
                        TensorRef::contiguous(o, DType::kBF16, {1, 1, hq, dim}), a);
  for (auto _ : state) {
    must(s->dispatch(op));
    must(s->synchronize());
  }
}

void BM_DispatchTinyOps(benchmark::State& state) {
  Device* d = npu("atom", false);
  Buffer a = must_alloc(d, 64), b = must_alloc(d, 64);
  auto s = d->create_stream();
  const OpDescriptor op(OpKind::kScale, {TensorRef::contiguous(a, DType::kF32, {16})},
                        TensorRef::contiguous(b, DType::kF32, {16}));
  constexpr int kBatch = 256;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) must(s->dispatch(op));
    must(s->synchronize());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void register_all() {
  for (const char* preset : {"atom", "rebel-quad"}) {
    for (DType t : {DType::kBF16, DType::kF32}) {
      benchmark::RegisterBenchmark(
          (std::string("BM_SimMatmul/") + preset + "/" + std::string(dtype_name(t))).c_str(),
          [preset, t](benchmark::State& s) { BM_SimMatmul(s, preset, t); })
          ->RangeMultiplier(2)
          ->Range(256, 8192)
          ->UseManualTime()
          ->Iterations(3);
    }
    for (bool to_device : {true, false})
      benchmark::RegisterBenchmark(
          (std::string("BM_SimCopy/") + preset + (to_device ? "/h2d" : "/d2h")).c_str(),
          [preset, to_device](benchmark::State& s) { BM_SimCopy(s, preset, to_device); })
          ->RangeMultiplier(16)
          ->Range(4 << 10, 256 << 20)
          ->UseManualTime()
          ->Iterations(3);
  }
  benchmark::RegisterBenchmark("BM_SimDecodeStep/atom/llama-1b",
                               [](benchmark::State& s) { BM_SimDecodeStep(s, "atom", kLlama1B); })
      ->UseManualTime()
      ->Iterations(2);
  benchmark::RegisterBenchmark(
      "BM_SimDecodeStep/rebel-quad/llama-8b",
      [](benchmark::State& s) { BM_SimDecodeStep(s, "rebel-quad", kLlama8B); })
      ->UseManualTime()
      ->Iterations(2);
  benchmark::RegisterBenchmark("BM_HostMatmul", BM_HostMatmul)
      ->Arg(256)
      ->Arg(512)
      ->Arg(1024)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_HostAttentionDecode", BM_HostAttentionDecode)
      ->Arg(512)
      ->Arg(4096)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_DispatchTinyOps", BM_DispatchTinyOps)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

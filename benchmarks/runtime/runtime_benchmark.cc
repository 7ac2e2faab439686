// Runtime benchmarks (Google Benchmark; built by default, never run by ctest): GPT-2
// small's shape (124 M parameters, f32, random N(0, 0.02) weights) on cpu:0.
//
//  BM_Gpt2SmallPrefill/P   one prefill of a P-token prompt: tokens/s (and PyTorch's for
//                          the 16-token prompt).
//  BM_Gpt2SmallDecode      greedy decode of 64 tokens after a 16-token prompt, timed per
//                          step. Counters:
//    decode_tokens_per_s       ours, best of 5 runs (_mean: over all of them)
//    roofline_tokens_per_s     cpu:0's measured memory bandwidth (DeviceInfo) divided by
//                              the weight bytes one token must read (every layer weight
//                              and the lm_head matrix once: 497 MB)
//    roofline_fraction         ours / roofline (target >= 0.8)
//    torch_decode_tokens_per_s PyTorch eager on the same checkpoint, same prompt and
//                              length, best of 5 (torch_gpt2_baseline.py, run once by
//                              this program, before our runs)
//    speedup_vs_torch          ours / torch (target >= 2)
//    tokens_match_torch        1 when both produced the same greedy tokens
//
// The checkpoint is written once to $HAL_BENCH_GPT2_DIR (default
// /tmp/hal_bench_gpt2_small_random: config.json + model.safetensors, 498 MB) so both
// implementations read the same file.
//
// Run: build/bin/hal_runtime_benchmark [--benchmark_filter=Decode]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hal/platform.h"
#include "hal/runtime/session.h"

namespace {

namespace fs = std::filesystem;
using namespace hal::runtime;

constexpr int kDecodePrompt = 16;
constexpr int kDecodeNew = 65;  // the first from prefill, then 64 decode steps

[[noreturn]] void die(const std::string& what, const hal::Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.to_string().c_str());
  std::exit(1);
}

struct Env {
  std::unique_ptr<hal::Platform> platform;
  hal::Device* cpu = nullptr;
  std::string dir;
  std::shared_ptr<const Model> model;
  std::unique_ptr<Session> session;
  std::vector<int32_t> prompt;
  nlohmann::json torch;  // null when the baseline could not run
};

std::vector<int32_t> prompt_of(int n) {
  std::vector<int32_t> p;
  for (int i = 0; i < n; ++i) p.push_back(1 + i);
  return p;
}

nlohmann::json run_torch(const std::string& dir) {
  // Debian's python3-torch lives in the system interpreter (a pyenv python3 first on
  // PATH would not have it); HAL_BENCH_PYTHON overrides.
  const char* python = std::getenv("HAL_BENCH_PYTHON");
  const std::string cmd = std::string(python ? python : "/usr/bin/python3") +
                          " " HAL_TORCH_BASELINE_SCRIPT " --model " + dir + " --prompt-len " +
                          std::to_string(kDecodePrompt) + " --new-tokens " +
                          std::to_string(kDecodeNew) + " --repeats 5 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (::pclose(p) != 0) {
    std::fprintf(stderr, "torch baseline did not run (python3-torch installed?)\n");
    return nullptr;
  }
  auto j = nlohmann::json::parse(out, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

Env& env() {
  static Env* e = [] {
    auto* e = new Env();
    auto p = hal::Platform::create();
    if (!p.ok()) die("platform", p.status());
    e->platform = std::move(*p);
    auto d = e->platform->device("cpu:0");
    if (!d.ok()) die("cpu:0", d.status());
    e->cpu = *d;
    const char* dir = std::getenv("HAL_BENCH_GPT2_DIR");
    e->dir = dir ? dir : (fs::temp_directory_path() / "hal_bench_gpt2_small_random").string();
    if (!fs::exists(fs::path(e->dir) / "model.safetensors")) {
      std::fprintf(stderr, "writing the GPT-2-small checkpoint to %s ...\n", e->dir.c_str());
      auto m = make_builtin_model("gpt2-small-random");
      if (!m.ok()) die("gpt2-small-random", m.status());
      hal::Status s = save_checkpoint(**m, e->dir, hal::DType::kF32);
      if (!s.ok()) die("save_checkpoint", s);
    }
    auto m = load_model(e->dir);
    if (!m.ok()) die(e->dir, m.status());
    e->model = std::shared_ptr<const Model>(std::move(*m));
    SessionOptions so;
    so.devices = {e->cpu};
    auto session = Session::create(e->model, so);
    if (!session.ok()) die("session", session.status());
    e->session = std::move(*session);
    e->prompt = prompt_of(kDecodePrompt);
    e->torch = run_torch(e->dir);
    return e;
  }();
  return *e;
}

void BM_Gpt2SmallPrefill(benchmark::State& state) {
  Env& e = env();
  const std::vector<int32_t> prompt = prompt_of(int(state.range(0)));
  GenerationOptions go;
  go.max_new_tokens = 1;
  double tokens = 0, seconds = 0;
  for (auto _ : state) {
    auto r = e.session->generate({prompt}, go);
    if (!r.ok()) {
      state.SkipWithError(r.status().to_string().c_str());
      return;
    }
    state.SetIterationTime(r->prefill_seconds);
    tokens += double(r->prompt_tokens);
    seconds += r->prefill_seconds;
  }
  state.counters["prefill_tokens_per_s"] = tokens / seconds;
  if (state.range(0) == kDecodePrompt && !e.torch.is_null())
    state.counters["torch_prefill_tokens_per_s"] = e.torch["prefill_tokens_per_s"].get<double>();
}
BENCHMARK(BM_Gpt2SmallPrefill)->Arg(16)->Arg(128)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_Gpt2SmallDecode(benchmark::State& state) {
  Env& e = env();
  GenerationOptions go;
  go.max_new_tokens = kDecodeNew;
  double tokens = 0, seconds = 0, best = 0;
  std::vector<int32_t> ours;
  for (auto _ : state) {
    auto r = e.session->generate({e.prompt}, go);
    if (!r.ok()) {
      state.SkipWithError(r.status().to_string().c_str());
      return;
    }
    state.SetIterationTime(r->decode_seconds);
    tokens += double(r->decode_tokens);
    seconds += r->decode_seconds;
    best = std::max(best, r->decode_tokens_per_s());
    ours = r->tokens[0];
  }
  const double mean_tps = tokens / seconds;
  const double bytes_per_token = double(e.model->config().decode_weight_bytes(4));
  const double bandwidth = e.cpu->info().memory_bandwidth_bytes_per_s;
  const double roofline = bandwidth / bytes_per_token;
  // Best of the iterations, like the PyTorch script's best of its repeats.
  state.counters["decode_tokens_per_s"] = best;
  state.counters["decode_tokens_per_s_mean"] = mean_tps;
  state.counters["weight_MB_per_token"] = bytes_per_token / 1e6;
  state.counters["bandwidth_GB_per_s"] = bandwidth / 1e9;
  state.counters["roofline_tokens_per_s"] = roofline;
  state.counters["roofline_fraction"] = best / roofline;
  if (!e.torch.is_null()) {
    const double torch_tps = e.torch["decode_tokens_per_s"].get<double>();
    state.counters["torch_decode_tokens_per_s"] = torch_tps;
    state.counters["speedup_vs_torch"] = best / torch_tps;
    state.counters["tokens_match_torch"] =
        e.torch["generated_ids"].get<std::vector<int32_t>>() == ours ? 1 : 0;
  }
}
BENCHMARK(BM_Gpt2SmallDecode)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();

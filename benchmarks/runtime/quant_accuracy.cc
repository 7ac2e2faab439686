// What each weight format costs in accuracy on GPT-2-small's shape (the built-in
// gpt2-small-random: 124 M parameters, N(0, 0.02) weights), against the same model in f32,
// on cpu:0. Not a test (nothing is asserted): it prints the table the README quotes.
//
// For each format (quantized on load from the f32 weights, hal/runtime/quantize.h):
//  - prefill: one pass over a 64-token sequence (the f32 model's own greedy continuation
//    of a fixed prompt): max |logit - f32 logit| over every position and the vocabulary,
//    relative to max |f32 logit|, and the share of positions whose argmax agrees;
//  - decode: 64 tokens generated greedily from the prompt through the KV cache (int8
//    activations on cpu:0 for quantized weights); the same two figures over the steps
//    whose inputs still equal f32's (the common prefix and the step after it), then the
//    tokens equal to f32's and the length of the common prefix.
//
// Run: build/bin/hal_quant_accuracy [--model NAME|DIR|FILE] [--formats q8_0,q4_0,...]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hal/platform.h"
#include "hal/runtime/session.h"

namespace {

using namespace hal::runtime;

[[noreturn]] void die(const std::string& what, const hal::Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.to_string().c_str());
  std::exit(1);
}

struct Logits {
  std::vector<std::vector<float>> rows;  // per position
};

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

struct Run {
  Logits prefill, decode;
  std::vector<int32_t> greedy;
};

Run run(std::shared_ptr<const Model> model, hal::Device* cpu, const WeightOptions& w,
        const std::vector<int32_t>& prompt, const std::vector<int32_t>& sequence, int64_t n) {
  SessionOptions so;
  so.devices = {cpu};
  so.weights = w;
  auto session = Session::create(model, so);
  if (!session.ok()) die("session", session.status());
  const int64_t vocab = model->config().vocab_size;
  Run r;
  if (!sequence.empty()) {
    auto all = (*session)->forward_all({sequence});
    if (!all.ok()) die("forward", all.status());
    for (size_t t = 0; t < sequence.size(); ++t)
      r.prefill.rows.emplace_back((*all)[0].begin() + int64_t(t) * vocab,
                                  (*all)[0].begin() + int64_t(t + 1) * vocab);
  }
  GenerationOptions go;
  go.max_new_tokens = n;
  go.keep_logits = true;
  auto g = (*session)->generate({prompt}, go);
  if (!g.ok()) die("generate", g.status());
  r.greedy = g->tokens[0];
  for (int64_t t = 0; t < n; ++t)
    r.decode.rows.emplace_back(g->logits[0].begin() + t * vocab,
                               g->logits[0].begin() + (t + 1) * vocab);
  return r;
}

void compare(const Logits& ref, const Logits& got, size_t rows, double* rel, double* agree) {
  double max_ref = 0, max_diff = 0;
  size_t same = 0;
  for (size_t t = 0; t < rows; ++t) {
    for (size_t v = 0; v < ref.rows[t].size(); ++v) {
      max_ref = std::max(max_ref, double(std::fabs(ref.rows[t][v])));
      max_diff = std::max(max_diff, double(std::fabs(ref.rows[t][v] - got.rows[t][v])));
    }
    same += argmax(ref.rows[t]) == argmax(got.rows[t]);
  }
  *rel = max_diff / std::max(1e-30, max_ref);
  *agree = rows ? double(same) / double(rows) : 1.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_name = "gpt2-small-random";
  std::string formats = "f16,bf16,q8_0,q6_k,q5_k,q5_1,q5_0,q4_k,q4_1,q4_0,int8,int4,int4_g32,fp8";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--model") == 0) model_name = argv[i + 1];
    if (std::strcmp(argv[i], "--formats") == 0) formats = argv[i + 1];
  }
  auto platform = hal::Platform::create();
  if (!platform.ok()) die("platform", platform.status());
  auto cpu = (*platform)->device("cpu:0");
  if (!cpu.ok()) die("cpu:0", cpu.status());
  auto loaded = load_model(model_name);
  if (!loaded.ok()) die("model", loaded.status());
  std::shared_ptr<const Model> model(std::move(*loaded));
  const std::vector<int32_t> prompt = {464, 3290, 286, 262, 995};
  const int64_t n = 64;
  // The f32 model's greedy continuation, then the sequence every format is fed.
  Run base = run(model, *cpu, {}, prompt, {}, n);
  std::vector<int32_t> sequence = prompt;
  sequence.insert(sequence.end(), base.greedy.begin(), base.greedy.end() - 1);
  base = run(model, *cpu, {}, prompt, sequence, n);
  std::printf("model %s, %zu prompt tokens, %lld generated, cpu:0\n\n", model->name().c_str(),
              prompt.size(), (long long)n);
  std::printf(
      "| weights | prefill max rel. logit error | prefill argmax agreement | decode max rel. logit "
      "error | "
      "decode argmax agreement | greedy tokens equal | common prefix |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  size_t start = 0;
  while (start <= formats.size()) {
    const size_t comma = formats.find(',', start);
    const std::string f =
        formats.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? formats.size() + 1 : comma + 1;
    if (f.empty()) continue;
    WeightOptions w;
    const std::pair<const char*, hal::DType> aliases[] = {{"int8", hal::DType::kI8Channel},
                                                          {"int4", hal::DType::kI4G128},
                                                          {"int4_g32", hal::DType::kI4G32},
                                                          {"fp8", hal::DType::kFP8E4M3Channel}};
    for (const auto& [name, t] : aliases)
      if (f == name) w.quantize = t;
    if (!w.quantize) {
      auto t = hal::parse_dtype(f);
      if (!t) die("format " + f, hal::invalid_argument("unknown"));
      w.quantize = *t;
    }
    const Run r = run(model, *cpu, w, prompt, sequence, n);
    double pre_rel, pre_agree, dec_rel, dec_agree;
    compare(base.prefill, r.prefill, sequence.size(), &pre_rel, &pre_agree);
    // Decode rows are comparable while the generated tokens (the rows' inputs) agree.
    size_t prefix = 0;
    while (prefix < r.greedy.size() && r.greedy[prefix] == base.greedy[prefix]) ++prefix;
    compare(base.decode, r.decode, std::min<size_t>(prefix + 1, size_t(n)), &dec_rel, &dec_agree);
    size_t equal = 0;
    for (size_t i = 0; i < r.greedy.size(); ++i) equal += r.greedy[i] == base.greedy[i];
    std::printf("| %s | %.2e | %.1f%% | %.2e | %.1f%% | %zu / %lld | %zu |\n", f.c_str(), pre_rel,
                100 * pre_agree, dec_rel, 100 * dec_agree, equal, (long long)n, prefix);
    std::fflush(stdout);
  }
  return 0;
}

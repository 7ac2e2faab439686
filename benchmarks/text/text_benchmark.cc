// Text benchmarks (not run by ctest).
//
//   BM_EncodeGpt2         encode throughput of the GPT-2 family tokenizer (byte-level BPE,
//                         GPT-2's split pattern) on English text, one thread. Counters:
//                           mb_per_s            ours (target >= 10)
//                           hf_mb_per_s         Hugging Face `tokenizers` on the same
//                                               files, measured in the same run
//                                               (hf_tokenizers_baseline.py; absent when
//                                               the Python package is missing)
//                           speedup_vs_hf       ours / theirs
//                           ids_match_hf        1 when both produced the same ids
//   BM_EncodeLlama3, BM_EncodeQwen2, BM_EncodeSentencePiece   the other families, ours only
//   BM_StreamDecode       TextStream tokens/s over the encoded text
//
// Inputs: the text is every file in /usr/share/common-licenses (English, on every Debian
// system; ~240 KB) or HAL_TEXT_BENCH_TEXT, encoded paragraph by paragraph (split at blank
// lines) as documents are; the GPT-2 tokenizer is the golden vocabulary
// (tests/text/goldens/gpt2) or HAL_TEXT_BENCH_TOKENIZER (e.g. a real GPT-2
// tokenizer.json). The word cache is warm after the first iteration, as it is in a
// running server and in the baseline.
//   build/bin/hal_text_benchmark [--benchmark_filter=Gpt2]
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hal/text/hf_tokenizer.h"
#include "hal/text/model_text.h"
#include "hal/text/text_stream.h"
#include "support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using hal::text::TokenId;
using hal::text::Tokenizer;

[[noreturn]] void die(const std::string& what, const hal::Status& s) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), s.to_string().c_str());
  std::exit(1);
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Env {
  std::string text;
  std::vector<std::string_view> paragraphs;  // `text` split at every blank line
  fs::path text_path;                        // a file holding `text`, for the baseline
  std::string gpt2_path;
  std::unique_ptr<Tokenizer> gpt2;
  nlohmann::json hf;  // null when the baseline did not run
};

nlohmann::json run_baseline(const std::string& tokenizer, const fs::path& text) {
  const char* python = std::getenv("HAL_BENCH_PYTHON");
  const hal::test::CliRun r = hal::test::run_command_line(
      std::string(python ? python : "python3") + " " HAL_HF_BASELINE_SCRIPT " --tokenizer " +
      tokenizer + " --text " + text.string());
  if (r.exit_code != 0) {
    std::fprintf(stderr, "Hugging Face baseline did not run (pip install tokenizers?): %s\n",
                 r.err.c_str());
    return nullptr;
  }
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

Env& env() {
  static Env* e = [] {
    auto* e = new Env();
    if (const char* path = std::getenv("HAL_TEXT_BENCH_TEXT")) {
      e->text = read_file(path);
    } else {
      std::vector<fs::path> files;
      for (const auto& f : fs::directory_iterator("/usr/share/common-licenses"))
        if (f.is_regular_file() && !f.is_symlink()) files.push_back(f.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) e->text += read_file(f);
    }
    if (e->text.empty()) {
      std::fprintf(stderr, "no benchmark text (set HAL_TEXT_BENCH_TEXT)\n");
      std::exit(1);
    }
    // Documents are encoded paragraph by paragraph, as a user feeds them (the baseline
    // splits the same way).
    for (size_t start = 0;;) {
      const size_t end = e->text.find("\n\n", start);
      e->paragraphs.push_back(std::string_view(e->text).substr(start, end - start));
      if (end == std::string::npos) break;
      start = end + 2;
    }
    e->text_path = fs::temp_directory_path() / "hal_text_bench_corpus.txt";
    std::ofstream(e->text_path, std::ios::binary) << e->text;
    const char* tok = std::getenv("HAL_TEXT_BENCH_TOKENIZER");
    e->gpt2_path = tok ? tok : HAL_TEXT_GOLDENS_DIR "/gpt2/tokenizer.json";
    auto t = hal::text::load_hf_tokenizer(e->gpt2_path);
    if (!t.ok()) die(e->gpt2_path, t.status());
    e->gpt2 = std::move(*t);
    e->hf = run_baseline(e->gpt2_path, e->text_path);
    return e;
  }();
  return *e;
}

// Encodes the benchmark text with `t` each iteration, paragraph by paragraph; reports
// MB/s and tokens/s, and the Hugging Face baseline beside it when `compare_hf`.
void encode_benchmark(benchmark::State& state, const Tokenizer& t, bool compare_hf) {
  Env& e = env();
  std::vector<TokenId> last;
  double seconds = 0;
  for (auto _ : state) {
    last.clear();
    const auto start = std::chrono::steady_clock::now();
    for (const std::string_view p : e.paragraphs) {
      auto ids = t.encode(p);
      if (!ids.ok()) {
        state.SkipWithError(ids.status().to_string().c_str());
        return;
      }
      last.insert(last.end(), ids->begin(), ids->end());
    }
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    benchmark::DoNotOptimize(last.data());
  }
  const double mb_per_s = double(e.text.size()) * double(state.iterations()) / seconds / 1e6;
  state.SetBytesProcessed(int64_t(state.iterations() * e.text.size()));
  state.counters["mb_per_s"] = mb_per_s;
  state.counters["tokens_per_s"] = double(last.size()) * double(state.iterations()) / seconds;
  state.counters["text_bytes"] = double(e.text.size());
  state.counters["tokens"] = double(last.size());
  if (compare_hf && !e.hf.is_null()) {
    const double hf = e.hf["encode_mb_per_s"].get<double>();
    state.counters["hf_mb_per_s"] = hf;
    state.counters["speedup_vs_hf"] = mb_per_s / hf;
    state.counters["ids_match_hf"] = e.hf["ids"].get<std::vector<TokenId>>() == last ? 1 : 0;
  }
}

void BM_EncodeGpt2(benchmark::State& state) { encode_benchmark(state, *env().gpt2, true); }
BENCHMARK(BM_EncodeGpt2)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

void BM_EncodeFamily(benchmark::State& state, const char* name) {
  static auto* texts = new std::map<std::string, hal::text::ModelText>();
  auto it = texts->find(name);
  if (it == texts->end()) {
    auto t = hal::text::load_model_text(std::string(HAL_TEXT_GOLDENS_DIR) + "/" + name);
    if (!t.ok()) die(name, t.status());
    it = texts->emplace(name, std::move(*t)).first;
  }
  encode_benchmark(state, it->second.tokenizer(), false);
}
BENCHMARK_CAPTURE(BM_EncodeFamily, Llama3, "llama3")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EncodeFamily, Qwen2, "qwen2")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EncodeFamily, Llama2, "llama2")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_EncodeFamily, SentencePiece, "spm_bpe")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_StreamDecode(benchmark::State& state) {
  Env& e = env();
  auto ids = e.gpt2->encode(e.text);
  if (!ids.ok()) die("encode", ids.status());
  hal::text::TextStream stream(*e.gpt2);
  size_t bytes = 0;
  for (auto _ : state) {
    stream.reset();
    for (const TokenId id : *ids) bytes += stream.push(id).size();
    bytes += stream.finish().size();
  }
  benchmark::DoNotOptimize(bytes);
  state.counters["tokens_per_s"] =
      benchmark::Counter(double(ids->size()), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_StreamDecode)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

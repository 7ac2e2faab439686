// `halctl bench --model` as a user drives it: the llama-bench-style rows (tokens/s per
// repetition, bytes per generated token, the fraction of the read bandwidth probed right
// before each repetition), side by side with a llama-bench given by path (here a stand-in
// script that prints llama-bench's JSON), and exit code 2 for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::HasSubstr;

hal::test::CliRun halctl(const std::string& args) {
  return hal::test::run_command_line(std::string(HALCTL_PATH) + " " + args);
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("halctl_bench_model_test_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

const json* row(const json& rows, const std::string& engine, const std::string& test) {
  for (const json& r : rows)
    if (r["engine"] == engine && r["test"] == test) return &r;
  return nullptr;
}

// A generated token's fraction of the bandwidth: each repetition's tokens/s against the
// probe taken right before it, averaged.
void expect_fraction_from_each_repetitions_probe(const json& r, size_t reps) {
  const auto ts = r["samples_ts"].get<std::vector<double>>();
  const auto bw = r["bandwidth_samples_bytes_per_s"].get<std::vector<double>>();
  ASSERT_EQ(ts.size(), reps) << r;
  ASSERT_EQ(bw.size(), reps) << r;
  const double bytes = r["bytes_per_token"].get<double>();
  ASSERT_GT(bytes, 0) << r;
  double sum = 0;
  for (size_t i = 0; i < reps; ++i) {
    ASSERT_GT(bw[i], 0) << r;
    sum += bytes * ts[i] / bw[i];
  }
  EXPECT_NEAR(r["bandwidth_fraction"].get<double>(), sum / double(reps), 1e-9 * sum) << r;
}

TEST(HalctlBenchModel, JsonRowsCarryEachRepetitionAndItsBandwidthProbe) {
  const hal::test::CliRun r = halctl("bench --model gpt2-tiny -p 8 -n 4 -r 3 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rows = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << r.out;
  const json* pp = row(rows, "hal", "pp8");
  const json* tg = row(rows, "hal", "tg4");
  ASSERT_NE(pp, nullptr) << r.out;
  ASSERT_NE(tg, nullptr) << r.out;
  EXPECT_EQ((*pp)["samples_ts"].size(), 3u);
  EXPECT_EQ((*pp)["backends"], "cpu:0");
  for (double v : (*pp)["samples_ts"].get<std::vector<double>>()) EXPECT_GT(v, 0);
  expect_fraction_from_each_repetitions_probe(*tg, 3);
  const json* memory = row(rows, "memory", "read");
  ASSERT_NE(memory, nullptr) << r.out;
  EXPECT_EQ((*memory)["bandwidth_samples_bytes_per_s"].size(), 3u);  // one per repetition
  EXPECT_THAT((*memory)["bandwidth_source"].get<std::string>(), HasSubstr("read-only"));
}

// A simulated device's rows are timed on its clock and taken against its stated bandwidth:
// no probe runs for them, so the host is probed once per cpu repetition only.
TEST(HalctlBenchModel, OnlyTheCpuRepetitionsAreProbed) {
  const hal::test::CliRun r =
      halctl("bench --model gpt2-tiny --devices cpu:0,npu:0 -p 0 -n 4 -r 2 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rows = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << r.out;
  const json* npu = nullptr;
  for (const json& e : rows)
    if (e["backends"].get<std::string>().rfind("npu:0", 0) == 0) npu = &e;
  ASSERT_NE(npu, nullptr) << r.out;
  EXPECT_TRUE((*npu)["bandwidth_samples_bytes_per_s"].empty()) << *npu;
  EXPECT_EQ((*npu)["bandwidth_source"], "device info");
  const json* memory = row(rows, "memory", "read");
  ASSERT_NE(memory, nullptr) << r.out;
  EXPECT_EQ((*memory)["bandwidth_samples_bytes_per_s"].size(), 2u);
}

TEST(HalctlBenchModel, SideBySideWithALlamaBenchAlternatesAndProbesBeforeEachOfItsRuns) {
  TempDir dir;
  const fs::path gguf = dir.path / "tiny.gguf";
  const hal::test::CliRun exported =
      halctl("export --model gpt2-tiny --out " + gguf.string() + " --format f16");
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  // llama-bench's JSON for one repetition of each test; each call is logged.
  const fs::path log = dir.path / "calls.log";
  const fs::path fake = dir.path / "llama-bench";
  {
    std::ofstream f(fake);
    f << "#!/bin/sh\necho \"$@\" >> " << log.string() << "\n"
      << "cat <<'EOF'\n"
      << R"([{"model_type": "gpt2 f16", "model_size": 1000, "model_n_params": 10,)"
      << R"( "backends": "CPU", "n_threads": 2, "n_prompt": 8, "n_gen": 0,)"
      << R"( "samples_ts": [1000.0]},)"
      << R"( {"model_type": "gpt2 f16", "model_size": 1000, "model_n_params": 10,)"
      << R"( "backends": "CPU", "n_threads": 2, "n_prompt": 0, "n_gen": 4,)"
      << R"( "samples_ts": [500.0]}])"
      << "\nEOF\n";
  }
  ::chmod(fake.c_str(), 0755);
  const hal::test::CliRun r = halctl("bench --model " + gguf.string() +
                                     " -p 8 -n 4 -r 2 -o json --llama-bench " + fake.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json rows = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << r.out;
  // llama-bench ran once per repetition, one repetition each, with our sizes.
  std::ifstream calls(log);
  std::string line;
  int n_calls = 0;
  while (std::getline(calls, line)) {
    ++n_calls;
    EXPECT_THAT(line, HasSubstr("-p 8 -n 4 -r 1 -o json")) << line;
  }
  EXPECT_EQ(n_calls, 2);
  const json* peer_tg = row(rows, "llama.cpp", "tg4");
  const json* ours_tg = row(rows, "hal", "tg4");
  ASSERT_NE(peer_tg, nullptr) << r.out;
  ASSERT_NE(ours_tg, nullptr) << r.out;
  EXPECT_EQ((*peer_tg)["samples_ts"].get<std::vector<double>>(), (std::vector<double>{500, 500}));
  // The peer's generated tokens read the same file's weights: our bytes per token.
  EXPECT_EQ((*peer_tg)["bytes_per_token"], (*ours_tg)["bytes_per_token"]);
  expect_fraction_from_each_repetitions_probe(*peer_tg, 2);
  expect_fraction_from_each_repetitions_probe(*ours_tg, 2);
  // Four probes: one before each engine's turn in each of the two rounds.
  const json* memory = row(rows, "memory", "read");
  ASSERT_NE(memory, nullptr) << r.out;
  EXPECT_EQ((*memory)["bandwidth_samples_bytes_per_s"].size(), 4u);
}

TEST(HalctlBenchModel, BadInputExitsTwoNamingWhatIsWrong) {
  const hal::test::CliRun unknown = halctl("bench --model no-such-model -p 8 -n 0 -r 1");
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_THAT(unknown.err, HasSubstr("no-such-model"));
  const hal::test::CliRun nothing = halctl("bench --model gpt2-tiny -p 0 -n 0");
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_THAT(nothing.err, HasSubstr("-p / -n"));
  const hal::test::CliRun threads = halctl("bench --model gpt2-tiny --threads 2x");
  EXPECT_EQ(threads.exit_code, 2);
  EXPECT_THAT(threads.err, HasSubstr("'2x' is not a count"));
}

}  // namespace

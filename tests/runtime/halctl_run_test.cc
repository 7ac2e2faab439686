// `halctl run` as a user drives it: human and JSON output, the logits dump layout, a
// model directory, batches and sampling options, tensor and pipeline parallelism over the
// dies of a simulated card in one process, and exit code 2 with a clear message for bad
// input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "hal/runtime/session.h"
#include "support/cli_run.h"
#include "test_devices.h"
#include "test_models.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using hal::test::CliRun;

// Runs `halctl run` with `args`; stdout and stderr captured separately (stdin closed).
CliRun halctl(const std::string& args) {
  return hal::test::run_command_line(std::string(HALCTL_PATH) + " run " + args);
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("halctl_run_test_" + std::to_string(::getpid()) + "_" + name);
}

TEST(HalctlRun, BuiltinModelHumanOutput) {
  CliRun r = halctl("--model gpt2-tiny --devices cpu:0 --prompt-ids 1,2,3,4 --max-new-tokens 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("model      gpt2-tiny"));
  EXPECT_THAT(r.out, HasSubstr("generated  "));
  EXPECT_THAT(r.out, HasSubstr("tokens/s"));
  EXPECT_EQ(r.err, "");  // not a terminal: no progress
}

TEST(HalctlRun, JsonMatchesTheLibraryAndDumpHasOneRowPerToken) {
  const fs::path dump = temp_path("logits.bin");
  CliRun r =
      halctl("--model gpt2-tiny --prompt-ids 5,6,7 --max-new-tokens 6 --json --dump-logits " +
             dump.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  ASSERT_TRUE(j["generated_ids"].is_array());
  const std::vector<int32_t> ids = j["generated_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_GT(j["prefill_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["decode_tokens_per_s"].get<double>(), 0);
  EXPECT_EQ(j["prompt_tokens"], 3);
  EXPECT_EQ(j["vocab_size"], 512);

  // The same run through the library gives the same tokens and logits.
  auto model = hal::runtime::load_model("gpt2-tiny");
  ASSERT_TRUE(model.ok());
  hal::runtime::SessionOptions so;
  so.devices = {testdevices::all_devices().cpu()};
  auto session = hal::runtime::Session::create(
      std::shared_ptr<const hal::runtime::Model>(std::move(*model)), so);
  ASSERT_TRUE(session.ok());
  hal::runtime::GenerationOptions go;
  go.max_new_tokens = 6;
  go.keep_logits = true;
  auto want = (*session)->generate({{5, 6, 7}}, go);
  ASSERT_TRUE(want.ok());
  EXPECT_EQ(ids, want->tokens[0]);

  // The dump: 6 rows of 512 little-endian floats; each row's argmax is that token.
  std::ifstream f(dump, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
  ASSERT_EQ(bytes.size(), 6u * 512 * 4);
  std::vector<float> rows(6 * 512);
  std::memcpy(rows.data(), bytes.data(), bytes.size());
  for (size_t t = 0; t < 6; ++t) {
    const float* row = rows.data() + t * 512;
    EXPECT_EQ(std::max_element(row, row + 512) - row, ids[t]) << "row " << t;
    for (size_t v = 0; v < 512; ++v) ASSERT_EQ(row[v], want->logits[0][t * 512 + v]);
  }
  fs::remove(dump);
}

TEST(HalctlRun, CheckpointDirectoryBatchAndSampling) {
  testmodels::Spec s;
  s.llama = true;
  s.kv_heads = 2;
  const fs::path dir = temp_path("llama");
  fs::remove_all(dir);
  const auto weights = testmodels::make_weights(s, testmodels::FileDType::kBF16);
  testmodels::WriteOptions wo;
  wo.dtype = testmodels::FileDType::kBF16;
  testmodels::write_checkpoint(dir, s, weights, wo);
  CliRun r =
      halctl("--model " + dir.string() + " --prompts \"1,2,3;4,5\" --max-new-tokens 4 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["generated_ids"].size(), 2u);
  EXPECT_EQ(j["generated_ids"][0].size(), 4u);
  EXPECT_EQ(j["family"], "llama");
  // The greedy tokens are the reference model's.
  EXPECT_EQ(j["generated_ids"][0].get<std::vector<int32_t>>(),
            testmodels::reference_greedy(s, weights, {1, 2, 3}, 4));
  EXPECT_EQ(j["generated_ids"][1].get<std::vector<int32_t>>(),
            testmodels::reference_greedy(s, weights, {4, 5}, 4));
  // Seeded sampling reproduces across processes.
  const std::string sample = "--model " + dir.string() +
                             " --prompt-ids 1,2 --max-new-tokens 8 --temperature 1.3 --top-k 30 "
                             "--top-p 0.9 --seed 11 --json";
  CliRun a = halctl(sample), b = halctl(sample);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(nlohmann::json::parse(a.out)["generated_ids"],
            nlohmann::json::parse(b.out)["generated_ids"]);
  // --batch repeats the prompt.
  CliRun batch =
      halctl("--model " + dir.string() + " --prompt-ids 1,2,3 --batch 3 --max-new-tokens 2 --json");
  ASSERT_EQ(batch.exit_code, 0) << batch.err;
  auto bj = nlohmann::json::parse(batch.out);
  ASSERT_EQ(bj["generated_ids"].size(), 3u);
  EXPECT_EQ(bj["generated_ids"][0], bj["generated_ids"][2]);
  fs::remove_all(dir);
}

TEST(HalctlRun, BadInputExitsTwoWithAClearMessage) {
  struct Case {
    std::string args, message;
  };
  const fs::path bad_config = temp_path("bad_config");
  fs::create_directories(bad_config);
  testmodels::write_text(bad_config / "config.json", "{\"model_type\": \"gpt2\", \"n_embd\": 64}");
  const Case cases[] = {
      {"--model /nonexistent/model/dir --prompt-ids 1",
       "neither a directory, a GGUF file nor a built-in model"},
      {"--model " + bad_config.string() + " --prompt-ids 1", "missing 'vocab_size'"},
      {"--model gpt2-tiny --prompt-ids 1,512",
       "token id 512 at position 1 is outside the vocabulary"},
      {"--model gpt2-tiny --prompt-ids 1,x", "'x' is not a token id"},
      {"--model gpt2-tiny --devices cpu:7 --prompt-ids 1", "cpu:7"},
      {"--model gpt2-tiny --dtype int8 --prompt-ids 1", "--dtype must be f32, f16 or bf16"},
      {"--model gpt2-tiny --prompt-ids 1 --max-new-tokens 0", "--max-new-tokens must be >= 1"},
      {"--model gpt2-tiny --prompt-ids 1 --bogus", "bogus"},
      {"--model gpt2-tiny --prompt-ids 1 --quantize q9_9",
       "--quantize 'q9_9' is not a weight format"},
      {"--model gpt2-tiny --prompt-ids 1 --weights some",
       "--weights must be 'stored' or 'compute'"},
      {"--model gpt2-tiny --prompt-ids 1 --max-new-tokens 300", "exceed the model's 256 positions"},
  };
  for (const Case& c : cases) {
    CliRun r = halctl(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
  fs::remove_all(bad_config);
}

TEST(HalctlRun, AnEmptyPromptIsRefusedNotReplaced) {
  // An empty list is an error; only an absent --prompt-ids means the one-token prompt 0.
  CliRun empty = halctl("--model gpt2-tiny --prompt-ids \"\" --max-new-tokens 2");
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_THAT(empty.err, HasSubstr("--prompt-ids: no token ids given"));
  EXPECT_EQ(empty.out, "");
  CliRun none = halctl("--model gpt2-tiny --prompts \"\" --max-new-tokens 2");
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_THAT(none.err, HasSubstr("--prompts holds no prompt"));
  CliRun absent = halctl("--model gpt2-tiny --max-new-tokens 2 --json");
  ASSERT_EQ(absent.exit_code, 0) << absent.err;
  auto j = nlohmann::json::parse(absent.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << absent.out;
  EXPECT_EQ(j["prompt_ids"], nlohmann::json::array({0}));
}

TEST(HalctlRun, AFifoOrDeviceInAModelDirectoryIsRefusedWithoutWaiting) {
  // Opening a FIFO for reading waits for a writer; halctl must refuse it at once. The
  // `timeout` turns a regression (a hang) into a failure instead of a stuck suite.
  testmodels::Spec s;
  const fs::path dir = temp_path("fifo_model");
  fs::remove_all(dir);
  testmodels::write_checkpoint(dir, s, testmodels::make_weights(s, testmodels::FileDType::kF32),
                               testmodels::WriteOptions{});
  const std::string run_args = "--model " + dir.string() + " --prompt-ids 1 --max-new-tokens 1";
  auto run_bounded = [&] {
    return hal::test::run_command_line("timeout 60 " + std::string(HALCTL_PATH) + " run " +
                                       run_args);
  };
  fs::remove(dir / "model.safetensors");
  ASSERT_EQ(::mkfifo((dir / "model.safetensors").c_str(), 0600), 0);
  CliRun weights = run_bounded();
  EXPECT_EQ(weights.exit_code, 2) << weights.err;
  EXPECT_THAT(weights.err, HasSubstr("model.safetensors: is a FIFO, not a regular file"));

  fs::remove(dir / "config.json");
  ASSERT_EQ(::mkfifo((dir / "config.json").c_str(), 0600), 0);
  CliRun config = run_bounded();
  EXPECT_EQ(config.exit_code, 2) << config.err;
  EXPECT_THAT(config.err, HasSubstr("config.json: is a FIFO, not a regular file"));

  fs::remove(dir / "config.json");
  fs::create_symlink("/dev/zero", dir / "config.json");
  CliRun device = run_bounded();
  EXPECT_EQ(device.exit_code, 2) << device.err;
  EXPECT_THAT(device.err, HasSubstr("is a character device"));
  fs::remove_all(dir);
}

TEST(HalctlRun, SeveralDevicesSplitLayersWithTheSameTokens) {
  CliRun one =
      halctl("--model gpt2-tiny --devices cpu:0 --prompt-ids 3,1,4 --max-new-tokens 8 --json");
  CliRun two = halctl(
      "--model gpt2-tiny --devices cpu:0,cpu:0 --prompt-ids 3,1,4 --max-new-tokens 8 --json");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  auto a = nlohmann::json::parse(one.out), b = nlohmann::json::parse(two.out);
  EXPECT_EQ(a["generated_ids"], b["generated_ids"]);
  EXPECT_EQ(b["layer_devices"], nlohmann::json({0, 0, 1, 1}));
}

// Within one process over local devices (no MPI): npu:0..3 of a simulated ATOM-Max card
// print the single die's tokens in every layout, with rank 0's simulated clock and the
// collectives it ran in the report.
TEST(HalctlRun, TensorAndPipelineParallelOverAtomMaxDiesPrintTheSingleDieTokens) {
  const std::string sim = "HAL_NPU_SIM=atom-max ";
  const std::string run = " --model llama-tiny --prompt-ids 5,9,200 --max-new-tokens 6 --json";
  const fs::path want_logits = temp_path("single_logits.bin"), logits = temp_path("logits.bin");
  const CliRun single = hal::test::run_command_line(
      sim + HALCTL_PATH + " run" + run + " --devices npu:0 --dump-logits " + want_logits.string());
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto want = nlohmann::json::parse(single.out)["generated_ids"];
  ASSERT_EQ(want.size(), 6u);
  auto read_floats = [](const fs::path& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(f)), {});
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
  };
  const std::vector<float> want_rows = read_floats(want_logits);
  ASSERT_EQ(want_rows.size(), 6u * 512);
  const fs::path report = temp_path("parallel_report.json");
  for (const char* layout : {"--tensor-parallel 4", "--tensor-parallel 2 --pipeline-parallel 2",
                             "--pipeline-parallel 4"}) {
    const CliRun r = hal::test::run_command_line(
        sim + HALCTL_PATH + " run" + run + " --devices npu:0..3 --report " + report.string() +
        " --dump-logits " + logits.string() + " " + layout);
    ASSERT_EQ(r.exit_code, 0) << layout << "\n" << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["generated_ids"], want) << layout;
    // The logits each token was chosen from: rank 0's (broadcast by the last stage).
    const std::vector<float> rows = read_floats(logits);
    ASSERT_EQ(rows.size(), want_rows.size()) << layout;
    for (size_t i = 0; i < rows.size(); ++i)
      ASSERT_NEAR(rows[i], want_rows[i], 1e-3) << layout << ", value " << i;
    EXPECT_EQ(j["devices"], nlohmann::json({"npu:0", "npu:1", "npu:2", "npu:3"})) << layout;
    EXPECT_EQ(j["device_clock_rank0"]["device"], "npu:0") << layout;
    EXPECT_GT(j["device_clock_rank0"]["decode_seconds"].get<double>(), 0) << layout;
    // Rank 0 of TP 4 all-reduces twice per layer and step; of PP 4 it sends on and
    // receives the logits broadcast.
    const auto& collectives = j["collectives_rank0"];
    ASSERT_TRUE(collectives.is_array()) << r.out;
    std::set<std::string> kinds;
    for (const auto& c : collectives) {
      kinds.insert(c["collective"].get<std::string>());
      EXPECT_EQ(c["link"], "peer") << layout;  // the dies of one card, through its switch
    }
    if (std::string(layout).find("tensor") != std::string::npos) {
      EXPECT_TRUE(kinds.count("all_reduce")) << layout;
    }
    if (std::string(layout).find("pipeline") != std::string::npos) {
      EXPECT_TRUE(kinds.count("send") && kinds.count("broadcast")) << layout;
    }
  }
  fs::remove(report);
  fs::remove(logits);
  fs::remove(want_logits);
}

TEST(HalctlRun, ParallelLayoutsThatDoNotFitAreRefusedNamingWhy) {
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {"--devices npu:0..2 --tensor-parallel 2 --pipeline-parallel 2",
       "TP 2 x PP 2 needs 4 devices"},
      {"--devices npu:0..2 --tensor-parallel 3", "attention heads (4) divisible by 3"},
      {"--pipeline-parallel 8", "needs at least 8 layers; the model has 4"},
      {"--tensor-parallel 0", "--tensor-parallel takes a positive number"},
      {"--tensor-parallel 2 --failover", "do not combine with tensor or pipeline"},
  };
  for (const Case& c : cases) {
    const CliRun r =
        hal::test::run_command_line(std::string("HAL_NPU_SIM=atom-max ") + HALCTL_PATH +
                                    " run --model llama-tiny " + "--prompt-ids 1 " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
  }
}

}  // namespace

// Ahead-of-time compilation as a user drives it: `halctl compile` writes executables for
// the prompt bucket and context, `halctl run --compiled` loads them (no compiler) and gives
// the op-by-op logits; a modified artifact and a run on other devices are refused.
TEST(HalctlRun, CompileThenRunCompiledGivesTheOpByOpLogitsAndRefusesAModifiedArtifact) {
  for (const std::string device : {"cpu:0", "npu:0"}) {
    SCOPED_TRACE(device);
    const fs::path dir = temp_path("compiled_" + device.substr(0, 3));
    fs::remove_all(dir);
    CliRun c = hal::test::run_command_line(
        std::string(HALCTL_PATH) + " compile --model gpt2-tiny --devices " + device +
        " --prompt-len 8 --max-context 32 --json --out " + dir.string());
    ASSERT_EQ(c.exit_code, 0) << c.err;
    std::vector<fs::path> artifacts;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".halx") artifacts.push_back(e.path());
    ASSERT_FALSE(artifacts.empty());
    const std::string prompt = " --model gpt2-tiny --prompt-ids 3,1,4,1,5 --max-new-tokens 6";
    const fs::path op_dump = temp_path("op.bin"), compiled_dump = temp_path("compiled.bin");
    CliRun op = halctl(prompt + " --devices " + device + " --compile off --dump-logits " +
                       op_dump.string());
    ASSERT_EQ(op.exit_code, 0) << op.err;
    CliRun r = halctl(prompt + " --devices " + device + " --json --compiled " + dir.string() +
                      " --dump-logits " + compiled_dump.string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    ASSERT_FALSE(j["executables"].empty()) << r.out;
    for (const auto& e : j["executables"])
      EXPECT_EQ(e["cache"], "loaded (halctl compile artifact)") << e;
    std::ifstream a(op_dump, std::ios::binary), b(compiled_dump, std::ios::binary);
    const std::string op_logits((std::istreambuf_iterator<char>(a)), {});
    const std::string compiled_logits((std::istreambuf_iterator<char>(b)), {});
    EXPECT_FALSE(op_logits.empty());
    EXPECT_TRUE(op_logits == compiled_logits) << "compiled logits differ from op by op";
    // Compiled for this device only.
    const std::string other = device == "cpu:0" ? "npu:0" : "cpu:0";
    CliRun wrong = halctl(prompt + " --devices " + other + " --compiled " + dir.string());
    EXPECT_NE(wrong.exit_code, 0);
    EXPECT_THAT(wrong.err, HasSubstr("compiled for model gpt2-tiny on " + device));
    // One byte changed in an artifact: refused, naming the file.
    {
      std::fstream f(artifacts[0], std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(-3, std::ios::end);
      const char flipped = char(f.peek() ^ 0x40);
      f.put(flipped);
    }
    CliRun tampered = halctl(prompt + " --devices " + device + " --compiled " + dir.string());
    EXPECT_EQ(tampered.exit_code, 1) << tampered.out;
    EXPECT_THAT(tampered.err, HasSubstr(artifacts[0].filename().string()));
    EXPECT_THAT(tampered.err, HasSubstr("refused"));
    fs::remove_all(dir);
    fs::remove(op_dump);
    fs::remove(compiled_dump);
  }
}

// `halctl run` as a user drives it: human and JSON output, the logits dump layout, a
// model directory, batches and sampling options, and exit code 2 with a clear message
// for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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
      {"--model /nonexistent/model/dir --prompt-ids 1", "neither a directory nor a built-in model"},
      {"--model " + bad_config.string() + " --prompt-ids 1", "missing 'vocab_size'"},
      {"--model gpt2-tiny --prompt-ids 1,512",
       "token id 512 at position 1 is outside the vocabulary"},
      {"--model gpt2-tiny --prompt-ids 1,x", "'x' is not a token id"},
      {"--model gpt2-tiny --devices cpu:7 --prompt-ids 1", "cpu:7"},
      {"--model gpt2-tiny --dtype int8 --prompt-ids 1", "--dtype must be f32, f16 or bf16"},
      {"--model gpt2-tiny --prompt-ids 1 --max-new-tokens 0", "--max-new-tokens must be >= 1"},
      {"--model gpt2-tiny --prompt-ids 1 --bogus", "bogus"},
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

}  // namespace

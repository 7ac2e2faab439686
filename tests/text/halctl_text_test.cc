// `halctl tokenize` and `halctl detokenize` as a user runs them: ids that match the
// goldens, text back, JSON, and exit code 2 with a clear message for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "support/cli_run.h"
#include "text_test_support.h"

namespace {

using hal::test::CliRun;
using ::testing::HasSubstr;

CliRun halctl(const std::string& args) {
  return hal::test::run_command_line(std::string(HALCTL_PATH) + " " + args);
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(HalctlTokenize, IdsMatchTheGoldensAndDetokenizeGivesTheTextBack) {
  const auto dir = hal::text::test::goldens_dir() / "llama3";
  const nlohmann::json g = hal::text::test::read_json(dir / "goldens.json");
  int checked = 0;
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    if (text.empty() || text.find('\0') != std::string::npos) continue;
    CliRun r = halctl("tokenize --json --model " + dir.string() + " --text " + quoted(text));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    // A prompt gets the model's BOS, as Hugging Face's tokenizer(text) does.
    EXPECT_EQ(j["ids"], c["ids_with_special"]) << text;
    std::string ids;
    for (const auto& id : j["ids"]) ids += (ids.empty() ? "" : ",") + id.dump();
    CliRun back = halctl("detokenize --skip-special --model " + dir.string() + " --ids " + ids);
    ASSERT_EQ(back.exit_code, 0) << back.err;
    EXPECT_EQ(back.out, c["decoded_skip_special"].get<std::string>() + "\n");
    if (++checked == 12) break;  // each run starts a process; a dozen strings suffice here
  }
}

TEST(HalctlTokenize, HumanOutputAndIdsOnly) {
  CliRun r = halctl("tokenize --model gpt2-tiny --text 'Hello, world'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("' wor'"));
  EXPECT_THAT(r.out, HasSubstr("tokens, 12 bytes of text (built-in gpt2-tiny"));
  CliRun ids = halctl("tokenize --model gpt2-tiny --ids-only --text 'Hello, world'");
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  CliRun back = halctl("detokenize --model gpt2-tiny --ids " + ids.out);
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_EQ(back.out, "Hello, world\n");
  // Special token text is recognised unless --no-parse-special.
  CliRun special = halctl("tokenize --model gpt2-tiny --ids-only --text '<|endoftext|>'");
  CliRun literal =
      halctl("tokenize --model gpt2-tiny --ids-only --no-parse-special --text '<|endoftext|>'");
  EXPECT_EQ(special.out, "511\n");
  EXPECT_NE(literal.out, "511\n");
}

TEST(HalctlTokenize, BadInputIsExitTwoWithAClearMessage) {
  CliRun r = halctl("tokenize --model gpt2-tiny --text \"$(printf 'ok\\377')\"");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--text: not valid UTF-8 at byte 2 (0xFF)"));
  r = halctl("tokenize --model /nonexistent --text hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("neither a directory nor a built-in model"));
  r = halctl("tokenize --model " + std::filesystem::temp_directory_path().string() + " --text hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no tokenizer (tokenizer.json or tokenizer.model)"));
  r = halctl("tokenize --model gpt2-tiny");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--text or --file"));
  r = halctl("detokenize --model gpt2-tiny --ids 1,2,600");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("token id 600 (position 2) is outside the vocabulary [0, 512)"));
  r = halctl("detokenize --model gpt2-tiny --ids 1,x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'x' is not a token id"));
  // A corrupt tokenizer.json.
  const auto dir =
      std::filesystem::temp_directory_path() / ("halctl_text_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << "{\"model\": {\"type\": \"BPE\", \"vocab\": ";
  r = halctl("tokenize --model " + dir.string() + " --text hi");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("tokenizer.json: not valid JSON"));
}

}  // namespace

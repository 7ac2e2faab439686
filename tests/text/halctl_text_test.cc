// `halctl tokenize` and `halctl detokenize` as a user runs them: ids that match the
// goldens, text back, JSON, and exit code 2 with a clear message for bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "hal/runtime/model.h"
#include "hal/text/model_text.h"
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
    for (const auto& id : j["ids"]) {
      if (!ids.empty()) ids += ',';
      ids += id.dump();
    }
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

// A Hugging Face checkpoint directory of a built-in model (config.json, model.safetensors)
// with its tokenizer files, the layout `halctl run --model DIR` reads: gpt2-tiny is a
// GPT-2 checkpoint with a GPT-2 tokenizer, llama-tiny a Llama checkpoint with a Llama 3
// style tokenizer (BOS template, <|eot_id|>, chat template).
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& builtin) {
    dir = std::filesystem::temp_directory_path() /
          ("halctl_text_ckpt_" + builtin + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    auto m = hal::runtime::make_builtin_model(builtin);
    EXPECT_TRUE(m.ok());
    EXPECT_TRUE(hal::runtime::save_checkpoint(**m, dir.string(), hal::DType::kF32).ok());
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"})
      std::filesystem::copy_file(std::filesystem::path(HAL_TEXT_DATA_DIR) / builtin / f, dir / f);
  }
  ~Checkpoint() { std::filesystem::remove_all(dir); }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(dir / name, std::ios::binary) << content;
  }
  std::filesystem::path dir;
};

nlohmann::json run_json(const std::string& args) {
  CliRun r = halctl("run --json " + args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

TEST(HalctlRunText, Gpt2CheckpointTextInTextOut) {
  Checkpoint ckpt("gpt2-tiny");
  auto text = hal::text::load_model_text(ckpt.dir.string());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const std::string model = "--model " + ckpt.dir.string();
  const auto j = run_json(model + " --prompt 'Hello, world' --max-new-tokens 12 --ignore-eos");
  EXPECT_EQ(j["prompt_ids"], *text->encode_prompt("Hello, world"));
  const auto generated = j["generated_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(generated.size(), 12u);
  // The text is the generated ids decoded (byte-level: decode has no first-token rule).
  auto decoded = text->tokenizer().decode(generated, {.skip_special_tokens = true});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(j["generated_text"], *decoded);
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["prompt_text"], "Hello, world");

  // Human output streams the prompt and the text first; the summary follows.
  CliRun human =
      halctl("run " + model + " --prompt 'Hello, world' --max-new-tokens 12 --ignore-eos");
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_EQ(human.out.substr(0, human.out.find('\n', 12 + decoded->size()) + 1),
            "Hello, world" + *decoded + "\n");
  EXPECT_THAT(human.out, HasSubstr("finish     length (--max-new-tokens), "));

  // A stop string ends the text before it; a stop id from generation_config.json ends
  // the row after it.
  const std::string stop = decoded->substr(decoded->size() / 2, 2);
  const auto stopped = run_json(
      model + " --prompt 'Hello, world' --max-new-tokens 12 --ignore-eos --stop " + quoted(stop));
  EXPECT_EQ(stopped["generated_text"], decoded->substr(0, decoded->find(stop)));
  EXPECT_EQ(stopped["finish_reason"], "stop");
  ckpt.write("generation_config.json",
             "{\"eos_token_id\": [" + std::to_string(generated[3]) + "]}");
  const auto eos = run_json(model + " --prompt 'Hello, world' --max-new-tokens 12");
  const auto eos_ids = eos["generated_ids"].get<std::vector<int32_t>>();
  ASSERT_FALSE(eos_ids.empty());
  EXPECT_EQ(eos_ids.back(), generated[3]);
  EXPECT_LE(eos_ids.size(), 4u);
  EXPECT_EQ(eos["finish_reason"], "stop");
  EXPECT_EQ(eos["stop_ids"], nlohmann::json::array({generated[3]}));
}

TEST(HalctlRunText, Llama3CheckpointChat) {
  Checkpoint ckpt("llama-tiny");
  auto text = hal::text::load_model_text(ckpt.dir.string());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const std::string model = "--model " + ckpt.dir.string();
  const auto j =
      run_json(model + " --chat --system 'Be brief.' --prompt 'Hi there' --max-new-tokens 6");
  nlohmann::ordered_json messages =
      nlohmann::ordered_json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", "Hi there"}}});
  auto prompt = text->apply_chat_template(messages, true);
  ASSERT_TRUE(prompt.ok()) << prompt.status().to_string();
  EXPECT_EQ(j["prompt_ids"], *text->tokenizer().encode(*prompt));
  EXPECT_EQ(j["prompt_ids"][0], *text->tokenizer().token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(j["stop_ids"], text->stop_ids());
  EXPECT_EQ(j["chat"], true);
  // Plain prompts get the model's BOS.
  const auto plain = run_json(model + " --prompt 'Hi there' --max-new-tokens 2");
  EXPECT_EQ(plain["prompt_ids"], *text->encode_prompt("Hi there"));
}

TEST(HalctlRunText, SeveralPromptsRunAsOneBatch) {
  const auto file = std::filesystem::temp_directory_path() /
                    ("halctl_text_prompt_" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << "A prompt from a file,\nover two lines.";
  const auto j = run_json("--model gpt2-tiny --prompt 'First' --prompt-file " + file.string() +
                          " --max-new-tokens 3 --ignore-eos");
  std::filesystem::remove(file);
  ASSERT_EQ(j["batch"], 2);
  ASSERT_EQ(j["generated_text"].size(), 2u);
  EXPECT_EQ(j["prompt_text"][1], "A prompt from a file,\nover two lines.");
  EXPECT_EQ(j["finish_reason"], nlohmann::json::array({"length", "length"}));
}

// A GGUF file carries its vocabulary in tokenizer.ggml.* metadata: gpt2-tiny written as
// GGUF (q8_0 weights) with its tokenizer.json turned into that metadata, as a GGUF
// converter does, tokenizes like the checkpoint and runs from text.
TEST(HalctlRunText, GgufFileCarriesItsVocabulary) {
  Checkpoint ckpt("gpt2-tiny");
  auto text = hal::text::load_model_text(ckpt.dir.string());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  const nlohmann::json j = nlohmann::json::parse(std::ifstream(ckpt.dir / "tokenizer.json"));
  using hal::runtime::GgufType;
  using hal::runtime::GgufValue;
  // Designated initializers would leave members out (-Wmissing-field-initializers).
  const auto value_of = [](GgufType type, GgufType elem = GgufType::kU8) {
    GgufValue v;
    v.type = type;
    v.elem = elem;
    return v;
  };
  const auto string_value = [&](std::string text) {
    GgufValue v = value_of(GgufType::kString);
    v.s = std::move(text);
    return v;
  };
  GgufValue tokens = value_of(GgufType::kArray, GgufType::kString);
  GgufValue types = value_of(GgufType::kArray, GgufType::kI32);
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it) {
    const size_t id = it.value().get<size_t>();
    if (tokens.strings.size() <= id) tokens.strings.resize(id + 1), types.ints.resize(id + 1, 1);
    tokens.strings[id] = it.key();
  }
  for (const auto& t : j["added_tokens"]) {
    const size_t id = t["id"].get<size_t>();
    if (tokens.strings.size() <= id) tokens.strings.resize(id + 1), types.ints.resize(id + 1, 1);
    tokens.strings[id] = t["content"];
    types.ints[id] = t["special"].get<bool>() ? 3 : 4;  // control, user-defined
  }
  tokens.count = types.count = tokens.strings.size();
  GgufValue merges = value_of(GgufType::kArray, GgufType::kString);
  for (const auto& m : j["model"]["merges"])
    merges.strings.push_back(m.is_string()
                                 ? m.get<std::string>()
                                 : m[0].get<std::string>() + " " + m[1].get<std::string>());
  merges.count = merges.strings.size();
  hal::runtime::GgufExportOptions opts;
  opts.format = hal::DType::kQ8_0;
  opts.extra = {{"tokenizer.ggml.model", string_value("gpt2")},
                {"tokenizer.ggml.pre", string_value("gpt-2")},
                {"tokenizer.ggml.tokens", tokens},
                {"tokenizer.ggml.token_type", types},
                {"tokenizer.ggml.merges", merges}};
  const auto file = std::filesystem::temp_directory_path() /
                    ("halctl_text_gguf_" + std::to_string(::getpid()) + ".gguf");
  auto m = hal::runtime::make_builtin_model("gpt2-tiny");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(hal::runtime::save_gguf(**m, file.string(), opts).ok());

  CliRun tok = halctl("tokenize --ids-only --model " + file.string() + " --text 'Hello, world'");
  EXPECT_EQ(tok.exit_code, 0) << tok.err;
  CliRun want =
      halctl("tokenize --ids-only --model " + ckpt.dir.string() + " --text 'Hello, world'");
  EXPECT_EQ(tok.out, want.out);
  const auto run = run_json("--model " + file.string() +
                            " --prompt 'Hello, world' --max-new-tokens 4 --ignore-eos");
  std::filesystem::remove(file);
  EXPECT_EQ(run["prompt_ids"], *text->encode_prompt("Hello, world"));
  const auto generated = run["generated_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(generated.size(), 4u);
  auto decoded = text->tokenizer().decode(generated, {.skip_special_tokens = true});
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(run["generated_text"], *decoded);
}

TEST(HalctlRunText, BadTextInputIsExitTwo) {
  CliRun r = halctl("run --model gpt2-tiny --prompt \"$(printf 'bad\\377')\"");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("the prompt: not valid UTF-8 at byte 3"));
  r = halctl("run --model gpt2-small-random --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("has no vocabulary, so it takes token ids"));
  r = halctl("run --model gpt2-tiny --prompt hi --prompt-ids 1,2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not both"));
  r = halctl("run --model gpt2-tiny --prompt-ids 1,2 --stop x");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--stop needs a text prompt"));
  r = halctl("run --model gpt2-tiny --chat --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("has no chat template"));
  // A template outside the supported subset is named, never used silently.
  Checkpoint ckpt("llama-tiny");
  ckpt.write("tokenizer_config.json",
             R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                 "chat_template": "{% macro turn(m) %}{{ m.content }}{% endmacro %}{{ turn(messages[0]) }}"})");
  r = halctl("run --model " + ckpt.dir.string() + " --chat --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unsupported statement 'macro'"));
  std::filesystem::remove(ckpt.dir / "tokenizer.json");
  std::filesystem::remove(ckpt.dir / "tokenizer_config.json");
  r = halctl("run --model " + ckpt.dir.string() + " --prompt hi");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no tokenizer (tokenizer.json or tokenizer.model)"));
}

// Text prompts with tensor and pipeline parallelism in one process (every rank on cpu:0):
// the text, ids and finish reason of a plain run, with a stop string every rank must
// honour alike (each local rank follows the text itself), and streamed human output.
TEST(HalctlRunText, TensorAndPipelineParallelRunsGiveThePlainRunsText) {
  const std::string args =
      "--model llama-tiny --prompt 'The quick brown fox' --ignore-eos "
      "--max-new-tokens 10";
  const auto plain = run_json(args);
  const std::string text = plain["generated_text"].get<std::string>();
  ASSERT_GE(text.size(), 4u) << plain.dump();
  // A stop string from the middle of the text: the row ends there on every rank.
  const std::string stop = text.substr(text.size() / 2, 2);
  const auto plain_stopped = run_json(args + " --stop " + quoted(stop));
  ASSERT_EQ(plain_stopped["finish_reason"], "stop");
  for (const char* layout : {" --tensor-parallel 2", " --tensor-parallel 2 --pipeline-parallel 2",
                             " --pipeline-parallel 2"}) {
    const auto j = run_json(args + layout);
    EXPECT_EQ(j["generated_ids"], plain["generated_ids"]) << layout;
    EXPECT_EQ(j["generated_text"], text) << layout;
    EXPECT_EQ(j["prompt_ids"], plain["prompt_ids"]) << layout;
    const auto stopped = run_json(args + layout + " --stop " + quoted(stop));
    EXPECT_EQ(stopped["generated_ids"], plain_stopped["generated_ids"]) << layout;
    EXPECT_EQ(stopped["generated_text"], plain_stopped["generated_text"]) << layout;
    EXPECT_EQ(stopped["finish_reason"], "stop") << layout;
  }
  const CliRun human = halctl("run " + args + " --tensor-parallel 2 --pipeline-parallel 2");
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_EQ(human.out.substr(0, human.out.find("\nmodel ") + 1),
            "The quick brown fox" + text + "\n");
  EXPECT_THAT(human.out, HasSubstr("parallel   TP 2 x PP 2"));
  EXPECT_THAT(human.out, HasSubstr("finish     length (--max-new-tokens)"));
}

}  // namespace

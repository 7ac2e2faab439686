// The text library's behaviour beyond the goldens: UTF-8 rules, streaming, model text
// loading (directories, built-in models, configs) and every kind of bad input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <thread>

#include "hal/text/hf_tokenizer.h"
#include "hal/text/model_text.h"
#include "hal/text/sentencepiece_tokenizer.h"
#include "hal/text/stop_strings.h"
#include "hal/text/text_stream.h"
#include "hal/text/utf8.h"
#include "text_test_support.h"

namespace hal::text {
namespace {

namespace fs = std::filesystem;

const std::string kFffd = "\xEF\xBF\xBD";

ModelText load(const std::string& family) {
  auto t = load_model_text((test::goldens_dir() / family).string());
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return std::move(*t);
}

// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("hal_text_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary) << content;
  }
  static inline int counter = 0;
};

TEST(Utf8, ValidationNamesTheOffendingByte) {
  EXPECT_TRUE(validate_utf8("héllo 世界 👍🏽", "t").ok());
  const std::pair<std::string, std::string> bad[] = {
      {"ab\xFF", "at byte 2 (0xFF)"},            // never valid
      {"\xC0\x80", "at byte 0 (0xC0)"},          // overlong
      {"x\xED\xA0\x80", "at byte 1 (0xED)"},     // surrogate
      {"\xF4\x90\x80\x80", "at byte 0 (0xF4)"},  // above U+10FFFF
      {"ok\xE4\xBD", "at byte 2 (0xE4, truncated character)"}};
  for (const auto& [text, where] : bad) {
    const Status s = validate_utf8(text, "--text");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("--text: not valid UTF-8 " + where), std::string::npos)
        << s.message();
  }
}

TEST(Utf8, LossyRepairReplacesMaximalSubparts) {
  // The Unicode standard's example (table 3-8): one U+FFFD per maximal ill-formed subpart.
  EXPECT_EQ(utf8_lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFffd + kFffd + kFffd + "b" + kFffd + "c" + kFffd + kFffd + "d");
  EXPECT_EQ(utf8_lossy("\xE4\xBD"), kFffd);
  EXPECT_EQ(utf8_lossy("\xE4\xBD\xA0"), "你");
}

TEST(TextStream, PrintsASplitCharacterOnceItIsWhole) {
  const ModelText text = load("gpt2");
  // The thumbs-up with skin tone is 8 bytes; this vocabulary has no token for it, so it
  // arrives as several byte-level tokens.
  auto ids = text.tokenizer().encode("a👍🏽b");
  ASSERT_TRUE(ids.ok());
  ASSERT_GT(ids->size(), 3u);
  TextStream stream(text.tokenizer());
  std::vector<std::string> pieces;
  for (const TokenId id : *ids) pieces.emplace_back(stream.push(id));
  pieces.emplace_back(stream.finish());
  std::string all;
  for (const std::string& p : pieces) {
    EXPECT_TRUE(is_valid_utf8(p)) << "a piece with half a character";
    all += p;
  }
  EXPECT_EQ(all, "a👍🏽b");
  // Some pieces were held back empty while a character was incomplete.
  EXPECT_TRUE(
      std::any_of(pieces.begin(), pieces.end() - 1, [](const auto& p) { return p.empty(); }));
}

TEST(TextStream, IncompleteCharacterAtTheEndBecomesReplacement) {
  const ModelText text = load("llama2");
  const Tokenizer& t = text.tokenizer();
  TextStream stream(t, {.continuation = true});
  std::string out;
  out += stream.push(*t.token_to_id("<0xE4>"));
  out += stream.push(*t.token_to_id("<0xBD>"));
  EXPECT_EQ(out, "");
  out += stream.finish();
  EXPECT_EQ(out, kFffd);
  stream.reset();
  EXPECT_EQ(stream.push(*t.token_to_id("<0xFF>")), kFffd);
}

TEST(TextStream, ContinuationKeepsTheLeadingSpace) {
  const ModelText text = load("llama2");
  auto ids = text.tokenizer().encode("Hello world");
  ASSERT_TRUE(ids.ok());
  std::string fresh, continued;
  TextStream a(text.tokenizer()), b(text.tokenizer(), {.continuation = true});
  for (const TokenId id : *ids) {
    fresh += a.push(id);
    continued += b.push(id);
  }
  EXPECT_EQ(fresh, "Hello world");
  EXPECT_EQ(continued, " Hello world");
}

TEST(TextStream, SkipsSpecialTokensUnlessAsked) {
  const ModelText text = load("qwen2");
  const TokenId end = *text.tokenizer().token_to_id("<|im_end|>");
  TextStream skip(text.tokenizer()), keep(text.tokenizer(), {.skip_special_tokens = false});
  EXPECT_EQ(skip.push(end), "");
  EXPECT_EQ(keep.push(end), "<|im_end|>");
  // Ids beyond the vocabulary (a wider output layer) add nothing.
  EXPECT_EQ(skip.push(text.tokenizer().vocab_size() + 10), "");
}

TEST(StopStrings, CutsAtTheFirstStopStringHoldingBackOnlyWhatCouldStartOne) {
  StopStrings stop({"\n\n", "STOP", ""});
  std::string shown;
  for (const char* piece : {"Hello", " S", "T", "OOP-less", " text\n", "\nmore"})
    shown += stop.push(piece);
  EXPECT_TRUE(stop.stopped());
  EXPECT_EQ(stop.matched(), "\n\n");
  EXPECT_EQ(shown, "Hello STOOP-less text");
  EXPECT_EQ(stop.push("ignored"), "");
  EXPECT_EQ(stop.finish(), "");

  // A held tail that never became a stop string comes out at the end.
  StopStrings tail({"END"});
  shown = std::string(tail.push("the E"));
  EXPECT_EQ(shown, "the ");
  shown += tail.finish();
  EXPECT_EQ(shown, "the E");
  EXPECT_FALSE(tail.stopped());

  // Multi-byte stop strings: never half a character.
  StopStrings kanji({"終わり"});
  EXPECT_EQ(kanji.push("これで終"), "これで");
  EXPECT_EQ(kanji.push("わり。"), "");
  EXPECT_TRUE(kanji.stopped());

  StopStrings none;
  EXPECT_EQ(none.push("as is"), "as is");
}

TEST(Tokenizer, BadInputIsAClearError) {
  const ModelText text = load("llama3");
  auto ids = text.tokenizer().encode("fine\xC3");
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ids.status().message().find("not valid UTF-8 at byte 4"), std::string::npos);
  const std::vector<TokenId> bad = {1, 2, 99999};
  auto decoded = text.tokenizer().decode(bad);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find(
                "token id 99999 (position 2) is outside the vocabulary [0, 1000)"),
            std::string::npos);
}

TEST(Tokenizer, SpecialTokenTextCanBeKeptAsText) {
  const ModelText text = load("gpt2");
  const TokenId eot = *text.tokenizer().token_to_id("<|endoftext|>");
  auto parsed = text.tokenizer().encode("a<|endoftext|>");
  auto literal = text.tokenizer().encode("a<|endoftext|>", {.parse_special = false});
  ASSERT_TRUE(parsed.ok() && literal.ok());
  EXPECT_EQ(parsed->back(), eot);
  EXPECT_EQ(std::count(literal->begin(), literal->end(), eot), 0);
  auto back = text.tokenizer().decode(*literal);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "a<|endoftext|>");
}

TEST(Tokenizer, EncodesTheSameOnEveryThread) {
  const ModelText text = load("llama3");
  const std::string s = test::read_text(test::goldens_dir() / "make_goldens.py");
  auto expected = text.tokenizer().encode(s);
  ASSERT_TRUE(expected.ok());
  std::vector<std::vector<TokenId>> got(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < got.size(); ++k)
    threads.emplace_back([&, k] { got[k] = text.tokenizer().encode(s).value_or({}); });
  for (auto& th : threads) th.join();
  for (const auto& g : got) EXPECT_EQ(g, *expected);
}

TEST(TokenizerJson, MalformedFilesAreErrorsNamingWhatIsWrong) {
  const std::string good = test::read_text(test::goldens_dir() / "gpt2" / "tokenizer.json");
  struct Case {
    std::string json, message;
  };
  nlohmann::json unsupported_pre = nlohmann::json::parse(good);
  unsupported_pre["pre_tokenizer"] = {{"type", "UnicodeScripts"}};
  nlohmann::json unigram = nlohmann::json::parse(good);
  unigram["model"]["type"] = "Unigram";
  nlohmann::json bad_merge = nlohmann::json::parse(good);
  bad_merge["model"]["merges"].push_back({"no_such", "token"});
  nlohmann::json bad_regex = nlohmann::json::parse(good);
  bad_regex["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}};
  nlohmann::json bad_id = nlohmann::json::parse(good);
  bad_id["added_tokens"][0]["id"] = -4;
  // Found by fuzz_tokenizer_json: one huge id used to size a table of 2.8 GB.
  nlohmann::json sparse_id = nlohmann::json::parse(good);
  sparse_id["model"]["vocab"]["!"] = 88888888;
  const Case cases[] = {
      {good.substr(0, good.size() / 2), "t.json: not valid JSON"},
      {"[1, 2]", "t.json: expected a JSON object"},
      {unsupported_pre.dump(), "t.json: pre_tokenizer: type 'UnicodeScripts' is not supported"},
      {unigram.dump(), "t.json: model: type 'Unigram' is not supported (supported: BPE)"},
      {bad_merge.dump(), "merge 'no_such token' uses a token that is not in the vocabulary"},
      {bad_regex.dump(), "regex '(unclosed' does not compile"},
      {bad_id.dump(), "needs a string \"content\" and an id in [0, 2^31)"},
      {sparse_id.dump(), "token '!' has id 88888888, but the vocabulary has only"},
  };
  for (const Case& c : cases) {
    auto t = parse_hf_tokenizer(c.json, "t.json");
    ASSERT_FALSE(t.ok()) << c.message;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(c.message), std::string::npos) << t.status().message();
  }
  auto missing = load_hf_tokenizer("/nonexistent/tokenizer.json");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto not_spm = parse_sentencepiece_tokenizer("definitely not a protobuf", "x.model");
  ASSERT_FALSE(not_spm.ok());
  EXPECT_NE(not_spm.status().message().find("x.model: not a SentencePiece model"),
            std::string::npos);
}

TEST(ModelText, DirectoryWithoutTokenizerFilesSaysSo) {
  TempDir dir;
  dir.write("config.json", "{}");
  auto t = load_model_text(dir.path.string());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("no tokenizer (tokenizer.json or tokenizer.model)"),
            std::string::npos);
  auto nowhere = load_model_text("/nonexistent/model");
  EXPECT_EQ(nowhere.status().code(), StatusCode::kNotFound);
  dir.write("tokenizer.json", "{\"model\": ");
  t = load_model_text(dir.path.string());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer.json: not valid JSON"), std::string::npos);
}

TEST(ModelText, UnsupportedTokenizerJsonFallsBackToTokenizerModel) {
  TempDir dir;
  nlohmann::json unigram = test::read_json(test::goldens_dir() / "gpt2" / "tokenizer.json");
  unigram["model"]["type"] = "Unigram";
  dir.write("tokenizer.json", unigram.dump());
  dir.write("tokenizer.model",
            test::read_text(test::goldens_dir() / "spm_unigram" / "tokenizer.model"));
  auto t = load_model_text(dir.path.string());
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_NE(t->source().find("tokenizer.model"), std::string::npos);
  EXPECT_NE(t->tokenizer().describe().find("SentencePiece"), std::string::npos);
}

TEST(ModelText, ConfigsDecideBosAndStopIds) {
  const ModelText llama3 = load("llama3");
  const Tokenizer& t = llama3.tokenizer();
  auto prompt = llama3.encode_prompt("Hi");
  ASSERT_TRUE(prompt.ok());
  EXPECT_EQ(prompt->front(), *t.token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(llama3.stop_ids(), (std::vector<TokenId>{*t.token_to_id("<|end_of_text|>"),
                                                     *t.token_to_id("<|eot_id|>")}));
  EXPECT_EQ(llama3.bos_id(), t.token_to_id("<|begin_of_text|>"));

  // LlamaTokenizer with add_bos_token=false: transformers rebuilds the post-processor.
  TempDir dir;
  dir.write("tokenizer.json", test::read_text(test::goldens_dir() / "llama2" / "tokenizer.json"));
  dir.write("tokenizer_config.json",
            R"({"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
                "add_bos_token": false, "add_eos_token": true, "tokenizer_class": "LlamaTokenizer"})");
  auto text = load_model_text(dir.path.string());
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  prompt = text->encode_prompt("Hi");
  ASSERT_TRUE(prompt.ok());
  EXPECT_NE(prompt->front(), 1);
  EXPECT_EQ(prompt->back(), 2);
  // Without generation_config.json the tokenizer's EOS stops generation.
  EXPECT_EQ(text->stop_ids(), std::vector<TokenId>{2});

  dir.write("tokenizer_config.json", R"({"eos_token": "<|no such token|>"})");
  auto bad = load_model_text(dir.path.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("names token '<|no such token|>'"), std::string::npos);
  dir.write("tokenizer_config.json", R"({"add_bos_token": "yes"})");
  bad = load_model_text(dir.path.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("\"add_bos_token\" must be true or false"),
            std::string::npos);
  dir.write("tokenizer_config.json", "{}");
  dir.write("generation_config.json", R"({"eos_token_id": [2, 5000]})");
  bad = load_model_text(dir.path.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("eos_token_id 5000 is outside the vocabulary"),
            std::string::npos);
}

TEST(ModelText, NamedChatTemplates) {
  auto config = parse_tokenizer_config(
      R"({"chat_template": [{"name": "default", "template": "A"}, {"name": "tool_use", "template": "B"}]})",
      "c.json");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  EXPECT_EQ(config->chat_templates.size(), 2u);
  EXPECT_EQ(config->chat_templates.at("tool_use"), "B");
  auto bad = parse_tokenizer_config(R"({"chat_template": 7})", "c.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("c.json: \"chat_template\" must be a string or a list"),
            std::string::npos);
}

TEST(BuiltinVocabulary, BuiltInModelsHaveTextWithNothingDownloaded) {
  EXPECT_EQ(builtin_text_models(), (std::vector<std::string>{"gpt2-tiny", "llama-tiny"}));
  auto gpt2 = load_model_text("gpt2-tiny");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status().to_string();
  // The built-in gpt2-tiny model's vocab_size (runtime/src/model.cc).
  EXPECT_EQ(gpt2->tokenizer().vocab_size(), 512);
  auto ids = gpt2->encode_prompt("Hello, world! The model reads every weight once.");
  ASSERT_TRUE(ids.ok());
  auto back = gpt2->tokenizer().decode(*ids);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, "Hello, world! The model reads every weight once.");
  EXPECT_EQ(gpt2->stop_ids(),
            std::vector<TokenId>{*gpt2->tokenizer().token_to_id("<|endoftext|>")});

  auto llama = load_model_text("llama-tiny");
  ASSERT_TRUE(llama.ok()) << llama.status().to_string();
  EXPECT_EQ(llama->tokenizer().vocab_size(), 512);
  auto chat = llama->apply_chat_template(
      nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hi"}}}), true);
  ASSERT_TRUE(chat.ok()) << chat.status().to_string();
  EXPECT_TRUE(chat->starts_with("<|begin_of_text|>"));
}

}  // namespace
}  // namespace hal::text

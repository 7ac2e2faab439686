// GGUF vocabularies (tokenizer.ggml.*): metadata built here the way a GGUF converter
// writes it, from the golden vocabularies, must tokenize like the reference:
//   gpt2 / llama-bpe / qwen2 ("gpt2" model)  from the tokenizer.json goldens, against
//                                             Hugging Face's ids;
//   llama (SentencePiece scores)              from spm_bpe's tokenizer.model read with
//                                             libsentencepiece, against SentencePiece's ids.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>

#include "hal/text/gguf_vocab.h"
#include "hal/text/model_text.h"
#include "hal/text/text_stream.h"
#include "text_test_support.h"

namespace hal::text {
namespace {

constexpr int64_t kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6;

// A GGUF converter's view of a Hugging Face byte-level tokenizer.json.
GgufMetadata from_tokenizer_json(const std::string& family, const std::string& pre) {
  const auto dir = test::goldens_dir() / family;
  const nlohmann::json j = test::read_json(dir / "tokenizer.json");
  std::vector<std::string> tokens;
  std::vector<int64_t> types;
  for (auto it = j["model"]["vocab"].begin(); it != j["model"]["vocab"].end(); ++it) {
    const size_t id = it.value().get<size_t>();
    if (tokens.size() <= id) tokens.resize(id + 1), types.resize(id + 1, kNormal);
    tokens[id] = it.key();
  }
  for (const auto& t : j["added_tokens"]) {
    const size_t id = t["id"].get<size_t>();
    if (tokens.size() <= id) tokens.resize(id + 1), types.resize(id + 1, kNormal);
    tokens[id] = t["content"];
    types[id] = t["special"].get<bool>() ? kControl : kUserDefined;
  }
  std::vector<std::string> merges;
  for (const auto& m : j["model"]["merges"])
    merges.push_back(m.is_string() ? m.get<std::string>()
                                   : m[0].get<std::string>() + " " + m[1].get<std::string>());
  GgufMetadata md;
  md.values["tokenizer.ggml.model"] = std::string("gpt2");
  md.values["tokenizer.ggml.pre"] = pre;
  md.values["tokenizer.ggml.tokens"] = tokens;
  md.values["tokenizer.ggml.token_type"] = types;
  md.values["tokenizer.ggml.merges"] = merges;
  const nlohmann::json config = test::read_json(dir / "tokenizer_config.json");
  const nlohmann::json gen = test::read_json(dir / "generation_config.json");
  if (gen.contains("bos_token_id"))
    md.values["tokenizer.ggml.bos_token_id"] = gen["bos_token_id"].get<int64_t>();
  const auto& eos = gen["eos_token_id"];
  md.values["tokenizer.ggml.eos_token_id"] =
      eos.is_array() ? eos[0].get<int64_t>() : eos.get<int64_t>();
  if (eos.is_array() && eos.size() > 1)
    md.values["tokenizer.ggml.eot_token_id"] = eos[1].get<int64_t>();
  if (config.contains("chat_template"))
    md.values["tokenizer.chat_template"] = config["chat_template"].get<std::string>();
  return md;
}

void expect_matches_goldens(const ModelText& text, const std::string& family, bool parse_special,
                            bool compare_with_special) {
  const nlohmann::json g = test::read_json(test::goldens_dir() / family / "goldens.json");
  for (const auto& c : g["cases"]) {
    const std::string s = c["text"];
    auto ids = text.tokenizer().encode(s, {.parse_special = parse_special});
    ASSERT_TRUE(ids.ok()) << ids.status().to_string();
    EXPECT_EQ(*ids, test::ids_of(c["ids"])) << family << ": \"" << test::printable(s) << "\"";
    if (compare_with_special) {
      auto prompt =
          text.tokenizer().encode(s, {.add_special_tokens = true, .parse_special = parse_special});
      ASSERT_TRUE(prompt.ok());
      EXPECT_EQ(*prompt, test::ids_of(c["ids_with_special"]))
          << family << ": \"" << test::printable(s) << "\"";
    }
    auto decoded = text.tokenizer().decode(test::ids_of(c["ids"]));
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, c["decoded"].get<std::string>()) << family;
  }
}

TEST(GgufVocabulary, Gpt2MatchesHuggingFace) {
  auto text = model_text_from_gguf(from_tokenizer_json("gpt2", "gpt-2"), "gpt2.gguf");
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  expect_matches_goldens(*text, "gpt2", true, true);
  EXPECT_EQ(text->stop_ids(),
            std::vector<TokenId>{*text->tokenizer().token_to_id("<|endoftext|>")});
}

TEST(GgufVocabulary, Llama3MatchesHuggingFaceWithBosAndStopIds) {
  auto text = model_text_from_gguf(from_tokenizer_json("llama3", "llama-bpe"), "llama3.gguf");
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  expect_matches_goldens(*text, "llama3", true, true);
  const Tokenizer& t = text->tokenizer();
  EXPECT_EQ(text->stop_ids(), (std::vector<TokenId>{*t.token_to_id("<|end_of_text|>"),
                                                    *t.token_to_id("<|eot_id|>")}));
  // The GGUF's chat template is the model's template.
  auto prompt = text->apply_chat_template(
      nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hi"}}}), true);
  ASSERT_TRUE(prompt.ok()) << prompt.status().to_string();
  EXPECT_TRUE(prompt->starts_with("<|begin_of_text|>"));
}

TEST(GgufVocabulary, Qwen2MatchesHuggingFace) {
  auto text = model_text_from_gguf(from_tokenizer_json("qwen2", "qwen2"), "qwen2.gguf");
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  // Qwen adds no BOS: tokenizer.ggml.add_bos_token false, as its converter writes.
  GgufMetadata md = from_tokenizer_json("qwen2", "qwen2");
  md.values["tokenizer.ggml.add_bos_token"] = false;
  text = model_text_from_gguf(md, "qwen2.gguf");
  ASSERT_TRUE(text.ok());
  expect_matches_goldens(*text, "qwen2", true, true);
}

TEST(GgufVocabulary, SentencePieceScoresMatchSentencePiece) {
  sentencepiece::SentencePieceProcessor sp;
  ASSERT_TRUE(sp.Load((test::goldens_dir() / "spm_bpe" / "tokenizer.model").string()).ok());
  std::vector<std::string> tokens;
  std::vector<double> scores;
  std::vector<int64_t> types;
  for (int id = 0; id < sp.GetPieceSize(); ++id) {
    tokens.push_back(sp.IdToPiece(id));
    scores.push_back(sp.GetScore(id));
    types.push_back(sp.IsControl(id)           ? kControl
                    : sp.IsUnknown(id)         ? kUnknown
                    : sp.IsByte(id)            ? kByte
                    : tokens.back() == "<sep>" ? kUserDefined
                                               : kNormal);
  }
  GgufMetadata md;
  md.values["tokenizer.ggml.model"] = std::string("llama");
  md.values["tokenizer.ggml.tokens"] = tokens;
  md.values["tokenizer.ggml.scores"] = scores;
  md.values["tokenizer.ggml.token_type"] = types;
  md.values["tokenizer.ggml.bos_token_id"] = int64_t(sp.bos_id());
  md.values["tokenizer.ggml.eos_token_id"] = int64_t(sp.eos_id());
  md.values["tokenizer.ggml.unknown_token_id"] = int64_t(sp.unk_id());
  auto text = model_text_from_gguf(md, "spm.gguf");
  ASSERT_TRUE(text.ok()) << text.status().to_string();
  // SentencePiece treats "<s>" written in text as text; so does this comparison.
  expect_matches_goldens(*text, "spm_bpe", false, true);
  // Streaming decode of a GGUF vocabulary.
  auto ids = text->tokenizer().encode("Grüße, 世界!");
  ASSERT_TRUE(ids.ok());
  TextStream stream(text->tokenizer());
  std::string out;
  for (const TokenId id : *ids) out += stream.push(id);
  out += stream.finish();
  EXPECT_EQ(out, "Grüße, 世界!");
}

TEST(GgufVocabulary, BadMetadataIsAClearError) {
  GgufMetadata md = from_tokenizer_json("gpt2", "gpt-2");
  GgufMetadata bad = md;
  bad.values["tokenizer.ggml.model"] = std::string("rwkv");
  auto r = model_text_from_gguf(bad, "m.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.model 'rwkv' is not supported"),
            std::string::npos);
  bad = md;
  bad.values["tokenizer.ggml.pre"] = std::string("deepseek-coder");
  r = model_text_from_gguf(bad, "m.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'deepseek-coder' is not supported"), std::string::npos);
  bad = md;
  bad.values.erase("tokenizer.ggml.merges");
  r = model_text_from_gguf(bad, "m.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.merges is missing"), std::string::npos);
  bad = md;
  bad.values["tokenizer.ggml.eos_token_id"] = int64_t(1) << 40;
  r = model_text_from_gguf(bad, "m.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("outside the vocabulary"), std::string::npos);
  bad = md;
  bad.values["tokenizer.ggml.tokens"] = int64_t(3);
  r = model_text_from_gguf(bad, "m.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tokenizer.ggml.tokens has the wrong type"),
            std::string::npos);
  bad = md;
  bad.values["tokenizer.ggml.merges"] = std::vector<std::string>{"x y"};
  r = model_text_from_gguf(bad, "m.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not in the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace hal::text

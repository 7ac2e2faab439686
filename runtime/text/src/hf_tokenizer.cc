// tokenizer.json: parsing, and the encode/decode pipeline of Hugging Face `tokenizers`.
#include "hal/text/hf_tokenizer.h"

#include <algorithm>

#include "hal/file_io.h"
#include "hal/text/utf8.h"
#include "hf_tokenizer_impl.h"

namespace hal::text {

namespace detail {

namespace {

class HfTokenizer final : public Tokenizer {
 public:
  explicit HfTokenizer(HfParts parts) : p_(std::move(parts)) {}

  Status init() {
    HAL_RETURN_IF_ERROR(added_.build(
        p_.added_tokens, [&](std::string_view content) { return p_.normalizer.apply(content); }));
    vocab_size_ = p_.model.size();
    for (const AddedToken& t : added_.tokens()) vocab_size_ = std::max(vocab_size_, t.id + 1);
    std::vector<std::string> tokens(static_cast<size_t>(vocab_size_));
    std::vector<bool> special(size_t(vocab_size_), false);
    for (TokenId id = 0; id < vocab_size_; ++id) {
      tokens[size_t(id)] = id_to_token(id);
      special[size_t(id)] = is_special(id);
    }
    for (const TokenId id : p_.post_processor.prefix())
      if (id < 0 || id >= vocab_size_)
        return invalid_argument(p_.description + ": post_processor adds id " + std::to_string(id) +
                                ", outside the vocabulary");
    return p_.decoder.surfaces(tokens, special, surfaces_);
  }

  std::string describe() const override { return p_.description; }
  int32_t vocab_size() const override { return vocab_size_; }

  Result<std::vector<TokenId>> encode(std::string_view text,
                                      const EncodeOptions& options) const override {
    HAL_RETURN_IF_ERROR(validate_utf8(text, "text"));
    std::vector<TokenId> ids;
    if (options.add_special_tokens) ids = p_.post_processor.prefix();
    thread_local std::vector<Segment> raw_segments, norm_segments;
    raw_segments.clear();
    if (added_.empty())
      raw_segments.push_back({0, text.size(), -1});
    else
      added_.split(text, false, options.parse_special, raw_segments);
    for (const Segment& raw : raw_segments) {
      if (raw.id >= 0) {
        ids.push_back(raw.id);
        continue;
      }
      if (raw.end == raw.start) continue;  // empty pieces are dropped, as in HF
      const std::string_view piece = text.substr(raw.start, raw.end - raw.start);
      std::string normalized_storage;
      std::string_view normalized = piece;
      if (!p_.normalizer.empty()) {
        HAL_ASSIGN_OR_RETURN(normalized_storage, p_.normalizer.apply(piece));
        normalized = normalized_storage;
      }
      norm_segments.clear();
      if (added_.empty())
        norm_segments.push_back({0, normalized.size(), -1});
      else
        added_.split(normalized, true, options.parse_special, norm_segments);
      for (const Segment& seg : norm_segments) {
        if (seg.id >= 0) {
          ids.push_back(seg.id);
          continue;
        }
        if (seg.end == seg.start) continue;
        HAL_RETURN_IF_ERROR(encode_piece(normalized.substr(seg.start, seg.end - seg.start),
                                         raw.start == 0 && seg.start == 0, ids));
      }
    }
    if (options.add_special_tokens)
      ids.insert(ids.end(), p_.post_processor.suffix().begin(), p_.post_processor.suffix().end());
    return ids;
  }

  Result<std::string> decode(std::span<const TokenId> ids,
                             const DecodeOptions& options) const override {
    HAL_RETURN_IF_ERROR(check_ids(ids, vocab_size_));
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (const TokenId id : ids) {
      if (options.skip_special_tokens && is_special(id)) continue;
      std::string t = id_to_token(id);
      if (t.empty()) continue;  // an id with no token (a hole in the vocabulary)
      tokens.push_back(std::move(t));
    }
    return p_.decoder.decode(std::move(tokens));
  }

  std::string id_to_token(TokenId id) const override {
    if (const AddedToken* t = added_.find(id)) return t->content;
    return std::string(p_.model.id_to_token(id));
  }
  std::optional<TokenId> token_to_id(std::string_view token) const override {
    if (const AddedToken* t = added_.find(token)) return t->id;
    return p_.model.token_to_id(token);
  }
  bool is_special(TokenId id) const override {
    const AddedToken* t = added_.find(id);
    return t && t->special;
  }
  const TokenSurfaces& surfaces() const override { return surfaces_; }
  std::vector<TokenId> special_prefix() const override { return p_.post_processor.prefix(); }
  std::vector<TokenId> special_suffix() const override { return p_.post_processor.suffix(); }

 private:
  // Pre-tokenizes one piece of normalized text and runs the model on each word.
  Status encode_piece(std::string_view text, bool at_start, std::vector<TokenId>& ids) const {
    if (p_.pre_tokenizer.empty()) {
      p_.model.tokenize(text, ids);
      return ok_status();
    }
    thread_local PieceList list;
    list.arena.assign(text);
    list.pieces.assign(1, Piece{0, uint32_t(text.size()), at_start});
    HAL_RETURN_IF_ERROR(p_.pre_tokenizer.apply(list));
    for (const Piece& piece : list.pieces) p_.model.tokenize(list.text(piece), ids);
    return ok_status();
  }

  HfParts p_;
  AddedVocabulary added_;
  int32_t vocab_size_ = 0;
  TokenSurfaces surfaces_;
};

// The BPE model of tokenizer.json's "model".
Result<BpeModel> parse_model(const nlohmann::json& m, const std::string& name) {
  const std::string where = name + ": model";
  if (!m.is_object()) return invalid_argument(where + ": expected an object");
  const std::string type = m.value("type", std::string(m.contains("merges") ? "BPE" : ""));
  if (type != "BPE")
    return invalid_argument(where + ": type '" + type + "' is not supported (supported: BPE)");
  const auto vocab_it = m.find("vocab");
  if (vocab_it == m.end() || !vocab_it->is_object())
    return invalid_argument(where + ": \"vocab\" must be an object of token: id");
  std::vector<std::pair<std::string, TokenId>> vocab;
  vocab.reserve(vocab_it->size());
  for (auto it = vocab_it->begin(); it != vocab_it->end(); ++it) {
    if (!it.value().is_number_integer())
      return invalid_argument(where + ": vocab entry '" + it.key() + "' has a non-integer id");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > INT32_MAX)
      return invalid_argument(where + ": vocab entry '" + it.key() + "' has id " +
                              std::to_string(id) + " outside [0, 2^31)");
    vocab.emplace_back(it.key(), TokenId(id));
  }
  std::vector<MergeRule> merges;
  if (const auto merges_it = m.find("merges"); merges_it != m.end() && !merges_it->is_null()) {
    if (!merges_it->is_array()) return invalid_argument(where + ": \"merges\" must be a list");
    merges.reserve(merges_it->size());
    uint32_t rank = 0;
    for (const auto& item : *merges_it) {
      MergeRule rule{{}, {}, rank++};
      if (item.is_string()) {
        const std::string s = item.get<std::string>();
        const size_t space = s.find(' ');
        if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
          return invalid_argument(where + ": merge \"" + s + "\" is not two tokens");
        rule.left = s.substr(0, space);
        rule.right = s.substr(space + 1);
      } else if (item.is_array() && item.size() == 2 && item[0].is_string() &&
                 item[1].is_string()) {
        rule.left = item[0].get<std::string>();
        rule.right = item[1].get<std::string>();
      } else {
        return invalid_argument(where + ": merge " + item.dump() +
                                " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      merges.push_back(std::move(rule));
    }
  }
  BpeOptions options;
  auto flag = [&](const char* key) {
    const auto it = m.find(key);
    return it != m.end() && it->is_boolean() && it->get<bool>();
  };
  auto text = [&](const char* key) -> std::optional<std::string> {
    const auto it = m.find(key);
    if (it == m.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  options.byte_fallback = flag("byte_fallback");
  options.ignore_merges = flag("ignore_merges");
  options.fuse_unk = flag("fuse_unk");
  options.unk_token = text("unk_token");
  options.continuing_subword_prefix = text("continuing_subword_prefix").value_or("");
  options.end_of_word_suffix = text("end_of_word_suffix").value_or("");
  return BpeModel::create(std::move(vocab), std::move(merges), std::move(options), where);
}

Result<std::vector<AddedToken>> parse_added_tokens(const nlohmann::json& j,
                                                   const std::string& name) {
  std::vector<AddedToken> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return invalid_argument(name + ": \"added_tokens\" must be a list");
  for (const auto& t : j) {
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() ||
        !t.contains("id") || !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 ||
        t["id"].get<int64_t>() > INT32_MAX)
      return invalid_argument(name + ": added token " + t.dump() +
                              " needs a string \"content\" and an id in [0, 2^31)");
    AddedToken a;
    a.content = t["content"].get<std::string>();
    a.id = t["id"].get<TokenId>();
    a.special = t.value("special", false);
    // Hugging Face's default: special tokens are not normalized, added words are.
    a.normalized = t.value("normalized", !a.special);
    a.single_word = t.value("single_word", false);
    a.lstrip = t.value("lstrip", false);
    a.rstrip = t.value("rstrip", false);
    if (!is_valid_utf8(a.content))
      return invalid_argument(name + ": added token " + std::to_string(a.id) +
                              " is not valid UTF-8");
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> make_hf_tokenizer(HfParts parts) {
  auto t = std::make_unique<HfTokenizer>(std::move(parts));
  HAL_RETURN_IF_ERROR(t->init());
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace detail

Result<std::unique_ptr<Tokenizer>> parse_hf_tokenizer(std::string_view json_text,
                                                      std::string_view name_view) {
  using namespace detail;
  const std::string name(name_view);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(name + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) return invalid_argument(name + ": expected a JSON object");
  try {
    HfParts parts;
    HAL_ASSIGN_OR_RETURN(parts.model, parse_model(j.value("model", nlohmann::json()), name));
    const nlohmann::json null;
    auto field = [&](const char* key) -> const nlohmann::json& {
      const auto it = j.find(key);
      return it == j.end() ? null : *it;
    };
    HAL_ASSIGN_OR_RETURN(parts.normalizer,
                         Normalizer::from_json(field("normalizer"), name + ": normalizer"));
    HAL_ASSIGN_OR_RETURN(parts.pre_tokenizer,
                         PreTokenizer::from_json(field("pre_tokenizer"), name + ": pre_tokenizer"));
    HAL_ASSIGN_OR_RETURN(parts.post_processor, PostProcessor::from_json(field("post_processor"),
                                                                        name + ": post_processor"));
    HAL_ASSIGN_OR_RETURN(parts.decoder, Decoder::from_json(field("decoder"), name + ": decoder"));
    HAL_ASSIGN_OR_RETURN(parts.added_tokens, parse_added_tokens(field("added_tokens"), name));
    parts.description = name + " (BPE" +
                        std::string(parts.pre_tokenizer.byte_level() ? ", byte-level" : "") +
                        (parts.model.options().byte_fallback ? ", byte fallback" : "") + ", " +
                        std::to_string(parts.model.size()) + " tokens + " +
                        std::to_string(parts.added_tokens.size()) + " added)";
    return make_hf_tokenizer(std::move(parts));
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(name + ": unexpected content: " + e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& path) {
  // A FIFO or device named as the file is refused, not waited on (hal/file_io.h).
  HAL_ASSIGN_OR_RETURN(const std::string text, hal::read_regular_file(path, "tokenizer"));
  return parse_hf_tokenizer(text, path);
}

}  // namespace hal::text

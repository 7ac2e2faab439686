// GGUF vocabularies (tokenizer.ggml.*) as Hugging Face pipelines (hf_tokenizer_impl.h).
#include <algorithm>
#include <map>

#include "hal/text/gguf_vocab.h"
#include "hal/text/model_text.h"
#include "hal/text/utf8.h"
#include "hf_tokenizer_impl.h"

namespace hal::text {

namespace {

using detail::AddedToken;
using detail::MergeRule;

// The pre-tokenizer patterns of the families (as their tokenizer.json files state them).
const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum TokenType : int64_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

class Metadata {
 public:
  Metadata(const GgufMetadata& m, std::string_view name) : m_(m), name_(name) {}

  template <typename T>
  Result<const T*> get(const std::string& key, bool required) const {
    const auto it = m_.values.find(key);
    if (it == m_.values.end()) {
      if (required) return invalid_argument(name_ + ": GGUF key " + key + " is missing");
      return static_cast<const T*>(nullptr);
    }
    const T* v = std::get_if<T>(&it->second);
    if (!v) return invalid_argument(name_ + ": GGUF key " + key + " has the wrong type");
    return v;
  }
  Result<std::optional<TokenId>> id(const std::string& key, size_t vocab) const {
    HAL_ASSIGN_OR_RETURN(const int64_t* v, get<int64_t>(key, false));
    if (!v) return std::optional<TokenId>();
    if (*v < 0 || size_t(*v) >= vocab)
      return invalid_argument(name_ + ": GGUF " + key + " = " + std::to_string(*v) +
                              " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    return std::optional<TokenId>(TokenId(*v));
  }
  Result<std::optional<bool>> flag(const std::string& key) const {
    HAL_ASSIGN_OR_RETURN(const bool* v, get<bool>(key, false));
    return v ? std::optional<bool>(*v) : std::nullopt;
  }
  const std::string& name() const { return name_; }

 private:
  const GgufMetadata& m_;
  std::string name_;
};

nlohmann::json byte_level_pre_tokenizer(const char* pattern) {
  nlohmann::json byte_level = {{"type", "ByteLevel"},
                               {"add_prefix_space", false},
                               {"trim_offsets", false},
                               {"use_regex", pattern == nullptr}};
  if (!pattern) return byte_level;
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", pattern}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            byte_level}}};
}

// Merges of a SentencePiece-style vocabulary: every split of a normal piece into two
// normal pieces, ranked by the piece's score (higher first; equal scores share a rank so
// the leftmost pair wins, as in SentencePiece's BPE).
std::vector<MergeRule> merges_from_scores(const std::vector<std::string>& tokens,
                                          const std::vector<double>& scores,
                                          const std::vector<int64_t>& types) {
  std::map<std::string_view, size_t> normal;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (types[i] == kNormal) normal.emplace(tokens[i], i);
  std::vector<double> distinct;
  for (const auto& [_, i] : normal) distinct.push_back(scores[i]);
  std::sort(distinct.begin(), distinct.end(), std::greater<>());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::vector<MergeRule> merges;
  for (const auto& [piece, i] : normal) {
    const uint32_t rank =
        uint32_t(std::lower_bound(distinct.begin(), distinct.end(), scores[i], std::greater<>()) -
                 distinct.begin());
    size_t at = 0;
    while (at < piece.size()) {
      const CharScan s = scan_char(piece.substr(at));
      at += s.kind == CharScan::kChar ? s.length : 1;
      if (at >= piece.size()) break;
      const std::string_view left = piece.substr(0, at), right = piece.substr(at);
      if (normal.count(left) && normal.count(right))
        merges.push_back({std::string(left), std::string(right), rank});
    }
  }
  return merges;
}

}  // namespace

Result<ModelText> model_text_from_gguf(const GgufMetadata& metadata, std::string_view name_view) {
  const Metadata md(metadata, name_view);
  const std::string& name = md.name();
  HAL_ASSIGN_OR_RETURN(const std::string* model, md.get<std::string>("tokenizer.ggml.model", true));
  HAL_ASSIGN_OR_RETURN(const auto* tokens,
                       md.get<std::vector<std::string>>("tokenizer.ggml.tokens", true));
  HAL_ASSIGN_OR_RETURN(const auto* types_in,
                       md.get<std::vector<int64_t>>("tokenizer.ggml.token_type", false));
  const size_t n = tokens->size();
  if (n == 0) return invalid_argument(name + ": GGUF tokenizer.ggml.tokens is empty");
  std::vector<int64_t> types = types_in ? *types_in : std::vector<int64_t>(n, kNormal);
  if (types.size() != n)
    return invalid_argument(name + ": GGUF tokenizer.ggml.token_type has " +
                            std::to_string(types.size()) + " entries for " + std::to_string(n) +
                            " tokens");
  for (size_t i = 0; i < n; ++i)
    if (!is_valid_utf8((*tokens)[i]))
      return invalid_argument(name + ": GGUF token " + std::to_string(i) + " is not valid UTF-8");

  HAL_ASSIGN_OR_RETURN(const auto bos, md.id("tokenizer.ggml.bos_token_id", n));
  HAL_ASSIGN_OR_RETURN(const auto eos, md.id("tokenizer.ggml.eos_token_id", n));
  HAL_ASSIGN_OR_RETURN(const auto eot, md.id("tokenizer.ggml.eot_token_id", n));
  HAL_ASSIGN_OR_RETURN(const auto eom, md.id("tokenizer.ggml.eom_token_id", n));
  HAL_ASSIGN_OR_RETURN(const auto unk, md.id("tokenizer.ggml.unknown_token_id", n));
  HAL_ASSIGN_OR_RETURN(const auto pad, md.id("tokenizer.ggml.padding_token_id", n));
  HAL_ASSIGN_OR_RETURN(const auto add_bos, md.flag("tokenizer.ggml.add_bos_token"));
  HAL_ASSIGN_OR_RETURN(const auto add_eos, md.flag("tokenizer.ggml.add_eos_token"));
  HAL_ASSIGN_OR_RETURN(const auto add_space_prefix, md.flag("tokenizer.ggml.add_space_prefix"));
  HAL_ASSIGN_OR_RETURN(const std::string* chat,
                       md.get<std::string>("tokenizer.chat_template", false));

  detail::HfParts parts;
  std::vector<std::pair<std::string, TokenId>> vocab;
  std::vector<MergeRule> merges;
  detail::BpeOptions options;
  const std::string where = name + ": GGUF vocabulary";
  nlohmann::json normalizer, pre_tokenizer, decoder;
  bool default_add_bos = false;
  for (size_t i = 0; i < n; ++i) {
    // Control and user-defined tokens are added tokens (matched whole in the text).
    if (types[i] == kControl || types[i] == kUserDefined) {
      AddedToken a;
      a.content = (*tokens)[i];
      a.id = TokenId(i);
      a.special = types[i] == kControl;
      parts.added_tokens.push_back(std::move(a));
    }
    vocab.emplace_back((*tokens)[i], TokenId(i));
  }
  if (*model == "gpt2") {
    HAL_ASSIGN_OR_RETURN(const auto* merge_strings,
                         md.get<std::vector<std::string>>("tokenizer.ggml.merges", true));
    uint32_t rank = 0;
    for (const std::string& m : *merge_strings) {
      const size_t space = m.find(' ');
      if (space == std::string::npos)
        return invalid_argument(name + ": GGUF merge '" + m + "' is not two tokens");
      merges.push_back({m.substr(0, space), m.substr(space + 1), rank++});
    }
    HAL_ASSIGN_OR_RETURN(const std::string* pre, md.get<std::string>("tokenizer.ggml.pre", false));
    const std::string pre_name = pre ? *pre : "gpt-2";
    if (pre_name == "gpt-2" || pre_name == "gpt2") {
      pre_tokenizer = byte_level_pre_tokenizer(nullptr);
    } else if (pre_name == "llama-bpe" || pre_name == "llama3" || pre_name == "llama-v3") {
      pre_tokenizer = byte_level_pre_tokenizer(kLlama3Pattern);
      options.ignore_merges = true;
      default_add_bos = true;
    } else if (pre_name == "qwen2") {
      pre_tokenizer = byte_level_pre_tokenizer(kQwen2Pattern);
      normalizer = {{"type", "NFC"}};
    } else {
      return invalid_argument(name + ": GGUF tokenizer.ggml.pre '" + pre_name +
                              "' is not supported (supported: gpt-2, llama-bpe, qwen2)");
    }
    decoder = {{"type", "ByteLevel"}};
  } else if (*model == "llama") {
    HAL_ASSIGN_OR_RETURN(const auto* scores,
                         md.get<std::vector<double>>("tokenizer.ggml.scores", true));
    if (scores->size() != n)
      return invalid_argument(name + ": GGUF tokenizer.ggml.scores has " +
                              std::to_string(scores->size()) + " entries for " + std::to_string(n) +
                              " tokens");
    merges = merges_from_scores(*tokens, *scores, types);
    options.byte_fallback = true;
    const std::optional<TokenId> unk_id = unk ? unk : [&]() -> std::optional<TokenId> {
      for (size_t i = 0; i < n; ++i)
        if (types[i] == kUnknown) return TokenId(i);
      return std::nullopt;
    }();
    if (unk_id) options.unk_token = (*tokens)[size_t(*unk_id)];
    const bool space_prefix = add_space_prefix.value_or(true);
    const std::string marker = "\xE2\x96\x81";
    nlohmann::json replace = {
        {"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", marker}};
    normalizer =
        space_prefix
            ? nlohmann::json{{"type", "Sequence"},
                             {"normalizers", {{{"type", "Prepend"}, {"prepend", marker}}, replace}}}
            : replace;
    decoder = {
        {"type", "Sequence"},
        {"decoders",
         {{{"type", "Replace"}, {"pattern", {{"String", marker}}}, {"content", " "}},
          {{"type", "ByteFallback"}},
          {{"type", "Fuse"}},
          {{"type", "Strip"}, {"content", " "}, {"start", space_prefix ? 1 : 0}, {"stop", 0}}}}};
    default_add_bos = true;
  } else {
    return invalid_argument(name + ": GGUF tokenizer.ggml.model '" + *model +
                            "' is not supported (supported: gpt2, llama)");
  }
  HAL_ASSIGN_OR_RETURN(parts.model, detail::BpeModel::create(std::move(vocab), std::move(merges),
                                                             std::move(options), where));
  HAL_ASSIGN_OR_RETURN(parts.normalizer, detail::Normalizer::from_json(normalizer, where));
  HAL_ASSIGN_OR_RETURN(parts.pre_tokenizer, detail::PreTokenizer::from_json(pre_tokenizer, where));
  HAL_ASSIGN_OR_RETURN(parts.decoder, detail::Decoder::from_json(decoder, where));
  nlohmann::json post = nullptr;
  std::vector<TokenId> prefix, suffix;
  if (add_bos.value_or(default_add_bos)) {
    if (!bos) return invalid_argument(name + ": GGUF add_bos_token is set without bos_token_id");
    prefix.push_back(*bos);
  }
  if (add_eos.value_or(false)) {
    if (!eos) return invalid_argument(name + ": GGUF add_eos_token is set without eos_token_id");
    suffix.push_back(*eos);
  }
  if (!prefix.empty() || !suffix.empty()) {
    nlohmann::json single = nlohmann::json::array();
    nlohmann::json specials = nlohmann::json::object();
    auto special = [&](TokenId id) {
      const std::string& t = (*tokens)[size_t(id)];
      single.push_back({{"SpecialToken", {{"id", t}, {"type_id", 0}}}});
      specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
    };
    for (const TokenId id : prefix) special(id);
    single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
    for (const TokenId id : suffix) special(id);
    post = {{"type", "TemplateProcessing"}, {"single", single}, {"special_tokens", specials}};
  }
  HAL_ASSIGN_OR_RETURN(parts.post_processor, detail::PostProcessor::from_json(post, where));
  parts.description = name + " (GGUF " + *model + ", " + std::to_string(n) + " tokens)";
  HAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, detail::make_hf_tokenizer(std::move(parts)));

  TokenizerConfig config;
  if (bos) config.bos_token = (*tokens)[size_t(*bos)];
  if (eos) config.eos_token = (*tokens)[size_t(*eos)];
  if (unk) config.unk_token = (*tokens)[size_t(*unk)];
  if (pad) config.pad_token = (*tokens)[size_t(*pad)];
  if (chat) config.chat_templates["default"] = *chat;
  GenerationConfig generation;
  generation.bos_token_id = bos;
  generation.pad_token_id = pad;
  if (eos) generation.eos_token_ids.push_back(*eos);
  std::vector<TokenId> extra_stops;
  if (eot) extra_stops.push_back(*eot);
  if (eom) extra_stops.push_back(*eom);
  return make_model_text(std::move(tok), std::move(config), std::move(generation), name,
                         extra_stops);
}

}  // namespace hal::text

// A model's text side: loading tokenizer files, tokenizer_config.json and
// generation_config.json from a directory or the built-in data.
#include "hal/text/model_text.h"

#include <algorithm>
#include <filesystem>

#include "hal/file_io.h"
#include "hal/text/hf_tokenizer.h"
#include "hal/text/sentencepiece_tokenizer.h"

namespace hal::text {

namespace detail {
// runtime/text/embed_data.cmake: the bytes of data/<model>/<name>, empty when absent.
std::string_view builtin_file(std::string_view model, std::string_view name);
}  // namespace detail

namespace {

namespace fs = std::filesystem;

Result<nlohmann::json> parse_json(std::string_view text, std::string_view name) {
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    if (!j.is_object()) return invalid_argument(std::string(name) + ": expected a JSON object");
    return j;
  } catch (const nlohmann::json::exception& e) {
    return invalid_argument(std::string(name) + ": not valid JSON: " + e.what());
  }
}

// A special token in tokenizer_config.json: "text", {"content": "text", ...} or null.
Result<std::optional<std::string>> config_token(const nlohmann::json& j, const char* key,
                                                std::string_view name) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (it->is_string()) return std::optional<std::string>(it->get<std::string>());
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return std::optional<std::string>((*it)["content"].get<std::string>());
  return invalid_argument(std::string(name) + ": \"" + key +
                          "\" must be a string or {\"content\": ...}");
}

bool builds_special_tokens_from_flags(const std::string& tokenizer_class) {
  for (const char* c : {"LlamaTokenizer", "LlamaTokenizerFast", "GemmaTokenizer",
                        "GemmaTokenizerFast", "CodeLlamaTokenizer", "CodeLlamaTokenizerFast"})
    if (tokenizer_class == c) return true;
  return false;
}

// The optional JSON files of a directory or built-in model, parsed.
struct ConfigFiles {
  TokenizerConfig config;
  GenerationConfig generation;
};

Result<ConfigFiles> read_configs(
    const std::function<Result<std::optional<std::string>>(const char*)>& read,
    const std::string& prefix) {
  ConfigFiles out;
  HAL_ASSIGN_OR_RETURN(auto config_text, read("tokenizer_config.json"));
  if (config_text) {
    HAL_ASSIGN_OR_RETURN(out.config,
                         parse_tokenizer_config(*config_text, prefix + "tokenizer_config.json"));
  }
  HAL_ASSIGN_OR_RETURN(auto gen_text, read("generation_config.json"));
  if (gen_text) {
    HAL_ASSIGN_OR_RETURN(out.generation,
                         parse_generation_config(*gen_text, prefix + "generation_config.json"));
  }
  return out;
}

}  // namespace

Result<TokenizerConfig> parse_tokenizer_config(std::string_view json_text, std::string_view name) {
  HAL_ASSIGN_OR_RETURN(const nlohmann::json j, parse_json(json_text, name));
  TokenizerConfig c;
  HAL_ASSIGN_OR_RETURN(c.bos_token, config_token(j, "bos_token", name));
  HAL_ASSIGN_OR_RETURN(c.eos_token, config_token(j, "eos_token", name));
  HAL_ASSIGN_OR_RETURN(c.unk_token, config_token(j, "unk_token", name));
  HAL_ASSIGN_OR_RETURN(c.pad_token, config_token(j, "pad_token", name));
  for (const char* key : {"add_bos_token", "add_eos_token"}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_boolean())
      return invalid_argument(std::string(name) + ": \"" + key + "\" must be true or false");
    (std::string_view(key) == "add_bos_token" ? c.add_bos_token : c.add_eos_token) =
        it->get<bool>();
  }
  if (j.contains("tokenizer_class") && j["tokenizer_class"].is_string())
    c.tokenizer_class = j["tokenizer_class"].get<std::string>();
  if (const auto it = j.find("chat_template"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      c.chat_templates["default"] = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& t : *it) {
        if (!t.is_object() || !t.contains("name") || !t["name"].is_string() ||
            !t.contains("template") || !t["template"].is_string())
          return invalid_argument(std::string(name) +
                                  ": chat_template list items need \"name\" and \"template\"");
        c.chat_templates[t["name"].get<std::string>()] = t["template"].get<std::string>();
      }
    } else {
      return invalid_argument(std::string(name) +
                              ": \"chat_template\" must be a string or a list of templates");
    }
  }
  return c;
}

Result<GenerationConfig> parse_generation_config(std::string_view json_text,
                                                 std::string_view name) {
  HAL_ASSIGN_OR_RETURN(const nlohmann::json j, parse_json(json_text, name));
  GenerationConfig g;
  auto id = [&](const nlohmann::json& v, const char* key) -> Result<TokenId> {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      return invalid_argument(std::string(name) + ": \"" + key +
                              "\" must be a token id (a non-negative integer)");
    return v.get<TokenId>();
  };
  for (const char* key : {"bos_token_id", "pad_token_id"}) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    HAL_ASSIGN_OR_RETURN(const TokenId v, id(*it, key));
    (std::string_view(key) == "bos_token_id" ? g.bos_token_id : g.pad_token_id) = v;
  }
  if (const auto it = j.find("eos_token_id"); it != j.end() && !it->is_null()) {
    if (it->is_array()) {
      for (const auto& v : *it) {
        HAL_ASSIGN_OR_RETURN(const TokenId e, id(v, "eos_token_id"));
        g.eos_token_ids.push_back(e);
      }
    } else {
      HAL_ASSIGN_OR_RETURN(const TokenId e, id(*it, "eos_token_id"));
      g.eos_token_ids.push_back(e);
    }
  }
  return g;
}

Result<ModelText> make_model_text(std::shared_ptr<const Tokenizer> tokenizer,
                                  TokenizerConfig config, GenerationConfig generation,
                                  std::string source, std::vector<TokenId> extra_stop_ids) {
  ModelText m;
  m.tokenizer_ = std::move(tokenizer);
  m.config_ = std::move(config);
  m.generation_ = std::move(generation);
  m.source_ = std::move(source);
  const Tokenizer& t = *m.tokenizer_;
  // Tokens the config names must exist.
  for (const auto* token : {&m.config_.bos_token, &m.config_.eos_token}) {
    if (*token && !t.token_to_id(**token))
      return invalid_argument(m.source_ + ": tokenizer_config.json names token '" + **token +
                              "', which the tokenizer does not have");
  }
  for (const TokenId id : m.generation_.eos_token_ids)
    if (id < 0 || id >= t.vocab_size())
      return invalid_argument(m.source_ + ": generation_config.json eos_token_id " +
                              std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(t.vocab_size()) + ")");
  if (builds_special_tokens_from_flags(m.config_.tokenizer_class) &&
      (m.config_.add_bos_token || m.config_.add_eos_token)) {
    std::vector<TokenId> prefix, suffix;
    if (m.config_.add_bos_token.value_or(true) && m.bos_id()) prefix.push_back(*m.bos_id());
    if (m.config_.add_eos_token.value_or(false) && m.eos_id()) suffix.push_back(*m.eos_id());
    m.prefix_override_ = prefix;
    m.suffix_override_ = suffix;
  }
  m.stop_ids_ = m.generation_.eos_token_ids;
  if (m.stop_ids_.empty() && m.eos_id()) m.stop_ids_.push_back(*m.eos_id());
  for (const TokenId id : extra_stop_ids)
    if (std::find(m.stop_ids_.begin(), m.stop_ids_.end(), id) == m.stop_ids_.end())
      m.stop_ids_.push_back(id);
  for (const auto& [name, source] : m.config_.chat_templates) {
    auto parsed = ChatTemplate::parse(source, name);
    if (parsed.ok())
      m.templates_.emplace(name, std::move(*parsed));
    else
      m.template_errors_.emplace(name, parsed.status());
  }
  return m;
}

std::optional<TokenId> ModelText::bos_id() const {
  if (config_.bos_token) return tokenizer_->token_to_id(*config_.bos_token);
  return generation_.bos_token_id;
}

std::optional<TokenId> ModelText::eos_id() const {
  if (config_.eos_token) return tokenizer_->token_to_id(*config_.eos_token);
  if (!generation_.eos_token_ids.empty()) return generation_.eos_token_ids.front();
  return std::nullopt;
}

std::vector<TokenId> ModelText::special_prefix() const {
  return prefix_override_ ? *prefix_override_ : tokenizer_->special_prefix();
}
std::vector<TokenId> ModelText::special_suffix() const {
  return suffix_override_ ? *suffix_override_ : tokenizer_->special_suffix();
}

Result<std::vector<TokenId>> ModelText::encode_prompt(std::string_view text) const {
  if (!prefix_override_) return tokenizer_->encode(text, {.add_special_tokens = true});
  HAL_ASSIGN_OR_RETURN(std::vector<TokenId> body, tokenizer_->encode(text, {}));
  std::vector<TokenId> ids = *prefix_override_;
  ids.insert(ids.end(), body.begin(), body.end());
  ids.insert(ids.end(), suffix_override_->begin(), suffix_override_->end());
  return ids;
}

Result<const ChatTemplate*> ModelText::chat_template(std::string_view name) const {
  const std::string key(name.empty() ? "default" : name);
  if (const auto it = templates_.find(key); it != templates_.end()) return &it->second;
  if (const auto it = template_errors_.find(key); it != template_errors_.end()) return it->second;
  std::string known;
  for (const auto& [n, _] : config_.chat_templates) known += (known.empty() ? "" : ", ") + n;
  if (known.empty())
    return not_found(source_ +
                     ": the model has no chat template (tokenizer_config.json has "
                     "no \"chat_template\")");
  return not_found(source_ + ": no chat template named '" + key + "' (the model has: " + known +
                   ")");
}

Result<std::string> ModelText::apply_chat_template(const nlohmann::ordered_json& messages,
                                                   bool add_generation_prompt,
                                                   const nlohmann::ordered_json& extra,
                                                   std::string_view template_name) const {
  HAL_ASSIGN_OR_RETURN(const ChatTemplate* t, chat_template(template_name));
  nlohmann::ordered_json vars = nlohmann::ordered_json::object();
  if (extra.is_object())
    for (auto it = extra.begin(); it != extra.end(); ++it) vars[it.key()] = it.value();
  vars["messages"] = messages;
  vars["add_generation_prompt"] = add_generation_prompt;
  auto token = [](const std::optional<std::string>& t) { return t.value_or(""); };
  vars["bos_token"] = token(config_.bos_token);
  vars["eos_token"] = token(config_.eos_token);
  vars["unk_token"] = token(config_.unk_token);
  vars["pad_token"] = token(config_.pad_token);
  return t->render(vars);
}

std::vector<std::string> builtin_text_models() {
  std::vector<std::string> out;
  for (const char* name : {"gpt2-tiny", "llama-tiny"})
    if (!detail::builtin_file(name, "tokenizer.json").empty()) out.push_back(name);
  return out;
}

Result<ModelText> load_model_text(std::string_view name_or_dir) {
  const std::string name(name_or_dir);
  const std::string_view builtin_json = detail::builtin_file(name, "tokenizer.json");
  if (!builtin_json.empty()) {
    const std::string source = "built-in " + name;
    HAL_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, parse_hf_tokenizer(builtin_json, source));
    HAL_ASSIGN_OR_RETURN(ConfigFiles files,
                         read_configs(
                             [&](const char* file) -> Result<std::optional<std::string>> {
                               const std::string_view bytes = detail::builtin_file(name, file);
                               if (bytes.empty()) return std::optional<std::string>();
                               return std::optional<std::string>(std::string(bytes));
                             },
                             source + ": "));
    return make_model_text(std::move(tok), std::move(files.config), std::move(files.generation),
                           source, {});
  }
  const fs::path dir(name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::string known;
    for (const std::string& n : builtin_text_models()) known += (known.empty() ? "" : ", ") + n;
    return not_found("model '" + name +
                     "' is neither a directory nor a built-in model with a vocabulary (" + known +
                     ")");
  }
  HAL_ASSIGN_OR_RETURN(ConfigFiles files,
                       read_configs(
                           [&](const char* file) -> Result<std::optional<std::string>> {
                             if (!fs::exists(dir / file, ec)) return std::optional<std::string>();
                             HAL_ASSIGN_OR_RETURN(
                                 std::string text,
                                 hal::read_regular_file((dir / file).string(), "model config"));
                             return std::optional<std::string>(std::move(text));
                           },
                           dir.string() + "/"));
  const fs::path json_path = dir / "tokenizer.json", spm_path = dir / "tokenizer.model";
  const bool has_json = fs::exists(json_path, ec), has_spm = fs::exists(spm_path, ec);
  std::unique_ptr<Tokenizer> tok;
  std::string source;
  if (has_json) {
    auto parsed = load_hf_tokenizer(json_path.string());
    const bool unsupported_model =
        !parsed.ok() && parsed.status().message().find(": model: type '") != std::string::npos;
    if (parsed.ok()) {
      tok = std::move(*parsed);
      source = json_path.string();
    } else if (!(unsupported_model && has_spm)) {
      return parsed.status();
    }
  }
  if (!tok && has_spm) {
    SentencePieceOptions options;
    options.add_bos = files.config.add_bos_token.value_or(true);
    options.add_eos = files.config.add_eos_token.value_or(false);
    HAL_ASSIGN_OR_RETURN(tok, load_sentencepiece_tokenizer(spm_path.string(), options));
    source = spm_path.string();
  }
  if (!tok)
    return not_found(dir.string() +
                     ": no tokenizer (tokenizer.json or tokenizer.model) in the "
                     "model directory; give token ids instead");
  return make_model_text(std::move(tok), std::move(files.config), std::move(files.generation),
                         source, {});
}

}  // namespace hal::text

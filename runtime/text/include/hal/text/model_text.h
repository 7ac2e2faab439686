// hal/text/model_text.h: everything a model ships for text: its tokenizer,
// tokenizer_config.json (BOS/EOS, whether to add BOS, chat templates) and
// generation_config.json (the EOS ids that stop generation).
//
// Where it comes from (load_model_text):
//   DIR/tokenizer.json       Hugging Face (hf_tokenizer.h), preferred when present; if its
//                            model type is unsupported and DIR/tokenizer.model exists, that
//                            is used instead
//   DIR/tokenizer.model      SentencePiece (sentencepiece_tokenizer.h)
//   DIR/tokenizer_config.json, DIR/generation_config.json   optional
//   a built-in model name    the vocabulary built into the library (gpt2-tiny,
//                            llama-tiny; runtime/text/data), so built-in models run with
//                            text and nothing downloaded
//   GGUF metadata            model_text_from_gguf() (gguf_vocab.h)
// A directory without tokenizer files is NOT_FOUND saying so; a malformed file is
// INVALID_ARGUMENT naming it.
//
// Special tokens: encode_prompt() adds what the tokenizer adds with add_special_tokens.
// For LlamaTokenizer / GemmaTokenizer / CodeLlamaTokenizer (tokenizer_class), an explicit
// add_bos_token / add_eos_token in tokenizer_config.json decides instead, as transformers
// rebuilds their post-processor from those flags.
//
// Stop ids: generation_config.json's eos_token_id (an id or a list), else the id of
// tokenizer_config.json's eos_token, else GGUF's eos/eot/eom ids.
//
// Threading: immutable after loading.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hal/status.h"
#include "hal/text/chat_template.h"
#include "hal/text/gguf_vocab.h"
#include "hal/text/tokenizer.h"

namespace hal::text {

struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
  std::optional<bool> add_bos_token, add_eos_token;
  std::string tokenizer_class;
  // Named templates, "default" for a single unnamed one.
  std::map<std::string, std::string> chat_templates;
};
// Parses tokenizer_config.json text (tokens may be strings or {"content": ...} objects).
Result<TokenizerConfig> parse_tokenizer_config(std::string_view json_text, std::string_view name);

struct GenerationConfig {
  std::optional<TokenId> bos_token_id, pad_token_id;
  std::vector<TokenId> eos_token_ids;
};
Result<GenerationConfig> parse_generation_config(std::string_view json_text, std::string_view name);

class ModelText {
 public:
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> shared_tokenizer() const { return tokenizer_; }
  const TokenizerConfig& config() const { return config_; }
  const GenerationConfig& generation() const { return generation_; }
  // Where the text side came from, for messages: "DIR/tokenizer.json", "built-in gpt2-tiny".
  const std::string& source() const { return source_; }

  // `text` as a prompt: the model's BOS (and EOS) added as its files say.
  Result<std::vector<TokenId>> encode_prompt(std::string_view text) const;
  // What add_special_tokens puts before / after a text.
  std::vector<TokenId> special_prefix() const;
  std::vector<TokenId> special_suffix() const;

  // Ids that end generation (see the header comment); may be empty.
  const std::vector<TokenId>& stop_ids() const { return stop_ids_; }
  std::optional<TokenId> bos_id() const;
  std::optional<TokenId> eos_id() const;

  // The chat template `name` ("" = "default"), or NOT_FOUND naming the model and the
  // templates it has.
  Result<const ChatTemplate*> chat_template(std::string_view name = "") const;
  // Renders `messages` with the model's template: add_generation_prompt, the special
  // tokens (bos_token, eos_token, unk_token, pad_token) and `extra` (e.g. tools) as
  // variables. The result is encoded without add_special_tokens (the template writes
  // BOS itself), as transformers does.
  Result<std::string> apply_chat_template(const nlohmann::ordered_json& messages,
                                          bool add_generation_prompt,
                                          const nlohmann::ordered_json& extra = {},
                                          std::string_view template_name = "") const;

 private:
  friend Result<ModelText> make_model_text(std::shared_ptr<const Tokenizer>, TokenizerConfig,
                                           GenerationConfig, std::string, std::vector<TokenId>);
  std::shared_ptr<const Tokenizer> tokenizer_;
  TokenizerConfig config_;
  GenerationConfig generation_;
  std::string source_;
  std::vector<TokenId> stop_ids_;
  std::optional<std::vector<TokenId>> prefix_override_, suffix_override_;
  std::map<std::string, ChatTemplate> templates_;
  // Templates that did not parse: the error is reported when the template is used, so a
  // model whose template we cannot interpret still runs plain prompts.
  std::map<std::string, Status> template_errors_;
};

// A built-in model's name or a checkpoint directory.
Result<ModelText> load_model_text(std::string_view name_or_dir);
// The names of the built-in models that have a vocabulary.
std::vector<std::string> builtin_text_models();
// From a GGUF file's tokenizer.* metadata; `name` (the file) prefixes errors.
Result<ModelText> model_text_from_gguf(const GgufMetadata& metadata, std::string_view name);

// Assembles a ModelText (used by the loaders above): checks the config's tokens against
// the tokenizer and parses the chat templates. `extra_stop_ids` are stop ids the source
// names besides EOS (GGUF eot/eom).
Result<ModelText> make_model_text(std::shared_ptr<const Tokenizer> tokenizer,
                                  TokenizerConfig config, GenerationConfig generation,
                                  std::string source, std::vector<TokenId> extra_stop_ids);

}  // namespace hal::text

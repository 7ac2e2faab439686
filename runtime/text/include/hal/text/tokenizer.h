// hal/text/tokenizer.h: text <-> token ids, the way the model's own tokenizer does it.
//
// One interface over the formats models ship:
//   - Hugging Face tokenizer.json (hf_tokenizer.h): BPE with its normalizers,
//     pre-tokenizers, decoders, post-processors and added/special tokens;
//   - SentencePiece tokenizer.model (sentencepiece_tokenizer.h), through libsentencepiece;
//   - GGUF vocabularies, tokenizer.ggml.* (gguf_vocab.h).
// Usually reached through load_model_text() (model_text.h), which also reads
// tokenizer_config.json and generation_config.json.
//
// Contract
// - encode() matches the reference implementation id for id: Hugging Face `tokenizers`
//   for tokenizer.json and GGUF byte-level vocabularies, libsentencepiece for
//   tokenizer.model (tests/text: golden corpora). Input must be valid UTF-8; otherwise
//   INVALID_ARGUMENT naming the byte offset.
// - decode() matches the reference's decode; ids outside [0, vocab_size()) are
//   INVALID_ARGUMENT naming the id. Bytes that do not form UTF-8 (ids no encoder would
//   make) are replaced as the reference does (utf8.h).
// - surfaces() is what streaming decode (text_stream.h) needs: the bytes each token adds
//   to the text, computed once at load so that streaming allocates nothing per token.
//
// Threading: immutable after construction; encode/decode may run on several threads at
// once (caches are per thread).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "hal/status.h"

namespace hal::text {

using TokenId = int32_t;

struct EncodeOptions {
  // Add what the tokenizer adds around a sequence (BOS, template tokens): Hugging Face's
  // add_special_tokens=True, SentencePiece's add_bos/add_eos from tokenizer_config.json.
  bool add_special_tokens = false;
  // Special tokens written in the text ("<|endoftext|>") become their ids, as Hugging
  // Face does by default. false: they are ordinary text (split_special_tokens=True).
  bool parse_special = true;
};

struct DecodeOptions {
  // Leave special tokens (BOS, EOS, <|im_end|>, ...) out of the text.
  bool skip_special_tokens = false;
};

// The bytes every token contributes to decoded text, for streaming (text_stream.h).
// Most decoders are a per-token mapping; the exceptions are captured here: a token's
// form at the start of the text (`first`: Metaspace drops its space marker,
// SentencePiece its dummy-prefix space) and characters a decoder strips from the ends of
// the whole text (Hugging Face's Strip decoder after Fuse).
class TokenSurfaces {
 public:
  // Which tokens take their `first` form:
  //   kFirstToken   the first token decoded (Hugging Face's Metaspace decoder);
  //   kFirstPiece   the first non-special token (SentencePiece with add_dummy_prefix);
  //   kUntilText    every non-special token until one yields text (SentencePiece with
  //                 remove_extra_whitespaces strips the space marker of each piece while
  //                 the text is still empty).
  // With SentencePiece, text after a special (control) token starts anew.
  enum class FirstRule { kFirstToken, kFirstPiece, kUntilText };

  void add(std::string_view rest, std::string_view first, bool special);
  size_t size() const { return special_.size(); }
  // Precondition: 0 <= id < size().
  std::string_view surface(TokenId id, bool first) const {
    const size_t i = size_t(id);
    return first ? std::string_view(bytes_).substr(first_off_[i], first_len_[i])
                 : std::string_view(bytes_).substr(rest_off_[i], rest_len_[i]);
  }
  bool special(TokenId id) const { return special_[size_t(id)] != 0; }
  size_t max_length() const { return max_length_; }

  FirstRule first_rule = FirstRule::kFirstToken;
  // Up to `strip_leading` copies of `strip_char` are removed from the start of the whole
  // text, up to `strip_trailing` from its end.
  char strip_char = ' ';
  int strip_leading = 0;
  int strip_trailing = 0;

 private:
  std::string bytes_;
  std::vector<uint32_t> rest_off_, rest_len_, first_off_, first_len_;
  std::vector<uint8_t> special_;
  size_t max_length_ = 0;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // What was loaded, for messages: "tokenizer.json (BPE, byte-level)", ...
  virtual std::string describe() const = 0;
  // Ids are in [0, vocab_size()), added tokens included.
  virtual int32_t vocab_size() const = 0;

  virtual Result<std::vector<TokenId>> encode(std::string_view text,
                                              const EncodeOptions& options = {}) const = 0;
  virtual Result<std::string> decode(std::span<const TokenId> ids,
                                     const DecodeOptions& options = {}) const = 0;

  // The token (as stored in the vocabulary, e.g. "Ġworld", "▁the", "<0x0A>") of an id;
  // empty for an id with no token.
  virtual std::string id_to_token(TokenId id) const = 0;
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  virtual bool is_special(TokenId id) const = 0;

  virtual const TokenSurfaces& surfaces() const = 0;

  // The ids the tokenizer adds with add_special_tokens (for the BOS/EOS report of
  // `halctl tokenize`): those before and after the text of a single sequence.
  virtual std::vector<TokenId> special_prefix() const = 0;
  virtual std::vector<TokenId> special_suffix() const = 0;
};

// The ids of decode() checked: INVALID_ARGUMENT for an id outside [0, vocab_size).
Status check_ids(std::span<const TokenId> ids, int32_t vocab_size);

}  // namespace hal::text

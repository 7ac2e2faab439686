// hal/text/hf_tokenizer.h: Hugging Face tokenizer.json.
//
// What is supported (anything else in the file is INVALID_ARGUMENT naming it and where it
// is, never silently skipped):
//   model           BPE: vocab, merges ("a b" strings or ["a", "b"] pairs), unk_token,
//                   fuse_unk, byte_fallback, ignore_merges, continuing_subword_prefix,
//                   end_of_word_suffix (dropout is ignored: decoding stays deterministic)
//   added_tokens    content, id, special, normalized, single_word, lstrip, rstrip
//   normalizer, pre_tokenizer, post_processor, decoder: see src/hf_components.h; this
//                   covers GPT-2, Llama 3 (ignore_merges), Qwen2/Qwen3 (NFC), Llama 2 and
//                   Mistral (byte fallback, Metaspace or Prepend/Replace), among others.
// Encoding follows `tokenizers`: added tokens split out first (raw, then normalized),
// normalizer, pre-tokenizer, model, post-processor (with add_special_tokens).
//
// Errors: a missing file is NOT_FOUND; malformed JSON (with the byte offset), a wrong
// field type, a merge naming an unknown token or an unsupported component is
// INVALID_ARGUMENT, prefixed with the path.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hal/status.h"
#include "hal/text/tokenizer.h"

namespace hal::text {

// Reads and parses the file at `path`.
Result<std::unique_ptr<Tokenizer>> load_hf_tokenizer(const std::string& path);
// Parses tokenizer.json text; `name` prefixes errors (e.g. the path).
Result<std::unique_ptr<Tokenizer>> parse_hf_tokenizer(std::string_view json_text,
                                                      std::string_view name);

}  // namespace hal::text

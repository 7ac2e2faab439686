// hal/text/gguf_vocab.h: the vocabulary a GGUF file carries (tokenizer.ggml.*), so a GGUF
// model runs from text.
//
// The GGUF reader is elsewhere; it hands over the "tokenizer.*" key/value pairs it parsed,
// in GgufMetadata (values as their GGUF types widen: integers to int64_t, floats to
// double, arrays to vectors), and model_text_from_gguf() (model_text.h) builds the
// tokenizer from them:
//   tokenizer.ggml.model        "gpt2": byte-level BPE (tokens, merges), pre-tokenized as
//                               tokenizer.ggml.pre says: "gpt-2" (or absent), "llama-bpe"
//                               / "llama3" (Llama 3's split, ignore_merges), "qwen2"
//                               (Qwen2's split, NFC);
//                               "llama": SentencePiece-style BPE (tokens, scores; merges
//                               by piece score, byte fallback, U+2581 for spaces);
//                               anything else is INVALID_ARGUMENT naming it.
//   tokenizer.ggml.tokens / scores / token_type / merges
//   tokenizer.ggml.bos_token_id / eos_token_id / eot_token_id / eom_token_id /
//     unknown_token_id / padding_token_id, add_bos_token, add_eos_token, add_space_prefix
//   tokenizer.chat_template
// token_type: 1 normal, 2 unknown, 3 control (a special token), 4 user-defined (an added
// token matched whole), 5 unused, 6 byte (<0xXX>).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace hal::text {

struct GgufMetadata {
  using Value = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                             std::vector<int64_t>, std::vector<double>>;
  // Keys as in the file ("tokenizer.ggml.tokens"); other keys are ignored.
  std::map<std::string, Value> values;
};

}  // namespace hal::text

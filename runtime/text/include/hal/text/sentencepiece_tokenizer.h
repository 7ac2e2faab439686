// hal/text/sentencepiece_tokenizer.h: SentencePiece tokenizer.model files, for models that
// ship only that (no tokenizer.json), through Debian's libsentencepiece: the reference
// implementation itself, so ids match by construction.
//
// What this layer adds around libsentencepiece:
// - add_special_tokens adds BOS / EOS as tokenizer_config.json says (add_bos_token,
//   default true; add_eos_token, default false), as transformers' LlamaTokenizer does.
// - parse_special: control pieces written in the text ("<s>", "</s>") become their ids,
//   and the text between them is encoded piece by piece, as transformers does; without
//   it, the text goes to SentencePiece as is (control pieces are then plain text, which
//   is SentencePiece's own behaviour).
// - decode() with skip_special_tokens=false writes control pieces as their text;
//   SentencePiece itself always drops them.
//
// Errors: a missing file is NOT_FOUND; a file SentencePiece cannot load is
// INVALID_ARGUMENT with its message.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hal/status.h"
#include "hal/text/tokenizer.h"

namespace hal::text {

struct SentencePieceOptions {
  bool add_bos = true;
  bool add_eos = false;
};

Result<std::unique_ptr<Tokenizer>> load_sentencepiece_tokenizer(
    const std::string& path, const SentencePieceOptions& options = {});
// From the bytes of a tokenizer.model; `name` prefixes errors.
Result<std::unique_ptr<Tokenizer>> parse_sentencepiece_tokenizer(
    std::string_view model_bytes, std::string_view name, const SentencePieceOptions& options = {});

}  // namespace hal::text

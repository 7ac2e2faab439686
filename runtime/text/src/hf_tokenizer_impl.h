// hf_tokenizer_impl.h (internal): the Hugging Face pipeline as a Tokenizer, built from
// its parts, so that tokenizer.json (hf_tokenizer.cc) and GGUF vocabularies
// (gguf_vocab.cc) share one implementation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "added_vocabulary.h"
#include "bpe_model.h"
#include "hal/text/tokenizer.h"
#include "hf_components.h"

namespace hal::text::detail {

struct HfParts {
  BpeModel model;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  PostProcessor post_processor;
  Decoder decoder;
  std::vector<AddedToken> added_tokens;
  std::string description;  // what describe() says
};

// INVALID_ARGUMENT (prefixed with parts.description) when the parts do not fit together.
Result<std::unique_ptr<Tokenizer>> make_hf_tokenizer(HfParts parts);

}  // namespace hal::text::detail

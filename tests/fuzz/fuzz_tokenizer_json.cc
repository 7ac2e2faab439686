// Fuzzes tokenizer.json parsing (parse_hf_tokenizer). Properties (hf_tokenizer.h): never
// crashes, throws or aborts; a rejected file gets a message; an accepted tokenizer
// encodes a fixed text (ids inside its vocabulary) and decodes them to valid UTF-8.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/text/hf_tokenizer.h"
#include "hal/text/utf8.h"

using namespace hal::text;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto t = parse_hf_tokenizer(json, "fuzz/tokenizer.json");
  if (!t.ok()) {
    FUZZ_CHECK(!t.status().message().empty(), "errors say what was wrong");
    return 0;
  }
  for (const char* text : {"Hello, world! <s> 123 \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8D", ""}) {
    auto ids = (*t)->encode(text, {.add_special_tokens = true});
    if (!ids.ok()) continue;  // e.g. a pathological regex that PCRE2 gives up on
    for (const TokenId id : *ids)
      FUZZ_CHECK(id >= 0 && id < (*t)->vocab_size(), "id " + std::to_string(id));
    auto back = (*t)->decode(*ids);
    FUZZ_CHECK(back.ok(), back.status().to_string());
    FUZZ_CHECK(is_valid_utf8(*back), "decode gave invalid UTF-8");
  }
  return 0;
}

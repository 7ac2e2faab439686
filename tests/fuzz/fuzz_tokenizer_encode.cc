// Fuzzes encoding arbitrary bytes with the golden tokenizers (tests/text/goldens): GPT-2
// (byte-level) and Llama 2 (byte fallback, normalizer, no pre-tokenizer). Properties
// (hal/text/tokenizer.h): never crashes or aborts; input that is not valid UTF-8 is
// INVALID_ARGUMENT and nothing else fails; every id is inside the vocabulary; decode()
// gives valid UTF-8; the byte-level tokenizer round-trips the text exactly; streaming the
// ids gives what decode() gives.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/text/model_text.h"
#include "hal/text/text_stream.h"
#include "hal/text/utf8.h"

using namespace hal::text;

namespace {

const ModelText& load(const char* family) {
  auto t = load_model_text(std::string(HAL_TEXT_GOLDENS_DIR) + "/" + family);
  FUZZ_CHECK(t.ok(), t.status().to_string());
  return *new ModelText(std::move(*t));
}

void check(const ModelText& m, std::string_view text, bool round_trip) {
  const Tokenizer& t = m.tokenizer();
  const bool valid = is_valid_utf8(text);
  auto ids = t.encode(text);
  FUZZ_CHECK(ids.ok() == valid, ids.ok() ? "invalid UTF-8 accepted" : ids.status().to_string());
  if (!ids.ok()) {
    FUZZ_CHECK(ids.status().code() == hal::StatusCode::kInvalidArgument, ids.status().to_string());
    return;
  }
  for (const TokenId id : *ids) FUZZ_CHECK(id >= 0 && id < t.vocab_size(), std::to_string(id));
  auto decoded = t.decode(*ids);
  FUZZ_CHECK(decoded.ok(), decoded.status().to_string());
  FUZZ_CHECK(is_valid_utf8(*decoded), "decode gave invalid UTF-8");
  if (round_trip) FUZZ_CHECK(*decoded == text, "round trip");
  TextStream stream(t, {.skip_special_tokens = false});
  std::string streamed;
  for (const TokenId id : *ids) streamed += stream.push(id);
  streamed += stream.finish();
  FUZZ_CHECK(streamed == *decoded, "streamed text differs from decode()");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ModelText& gpt2 = load("gpt2");
  static const ModelText& llama2 = load("llama2");
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check(gpt2, text, true);
  check(llama2, text, false);
  return 0;
}

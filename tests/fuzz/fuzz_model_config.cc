// Fuzzes config.json parsing (parse_model_config). Properties (model_config.h): never
// crashes, throws or aborts; an accepted config has positive sizes, heads that divide the
// hidden size and kv heads that divide the heads, and its derived figures (parameter
// count, decode bytes, summary) can be computed; and it survives a round trip through
// model_config_json().
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/runtime/model_config.h"

using namespace hal::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_model_config(text, "fuzz/config.json");
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), "errors say what was wrong");
    return 0;
  }
  const ModelConfig& c = *parsed;
  FUZZ_CHECK(c.vocab_size > 0 && c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 &&
                 c.num_kv_heads > 0 && c.head_dim > 0 && c.intermediate_size > 0 &&
                 c.max_positions > 0,
             c.summary());
  FUZZ_CHECK(c.num_heads % c.num_kv_heads == 0, "kv heads divide heads");
  (void)c.parameter_count();
  (void)c.decode_weight_bytes(2);
  (void)c.summary();
  const std::string again = model_config_json(c);
  auto reparsed = parse_model_config(again, "round trip");
  FUZZ_CHECK(reparsed.ok(), "round trip parses: " + reparsed.status().to_string() + "\n" + again);
  FUZZ_CHECK(model_config_json(*reparsed) == again, "round trip is stable:\n" + again);
  return 0;
}

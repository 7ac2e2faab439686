// Fuzzes chat templates (ChatTemplate::parse and render): the template text is outside
// input (tokenizer_config.json, GGUF metadata). Properties (chat_template.h): never
// crashes, aborts or hangs (nesting and work are bounded); failures are INVALID_ARGUMENT
// with a message naming the template; output is valid UTF-8.
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "hal/text/chat_template.h"
#include "hal/text/utf8.h"

using namespace hal::text;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto t = ChatTemplate::parse(source, "fuzz");
  if (!t.ok()) {
    FUZZ_CHECK(t.status().code() == hal::StatusCode::kInvalidArgument, t.status().to_string());
    FUZZ_CHECK(t.status().message().find("chat template 'fuzz'") != std::string::npos,
               t.status().message());
    return 0;
  }
  static const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Hi \u00e9 \ud83d\udc4d"},
                 {"role": "assistant", "content": "<think>x</think>Hello", "tool_calls": []},
                 {"role": "tool", "content": {"temp": 21.5, "ok": true, "list": [1, null]}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]})");
  auto out = t->render(vars);
  if (!out.ok()) {
    FUZZ_CHECK(out.status().code() == hal::StatusCode::kInvalidArgument, out.status().to_string());
    return 0;
  }
  FUZZ_CHECK(hal::text::is_valid_utf8(*out), "render gave invalid UTF-8");
  return 0;
}

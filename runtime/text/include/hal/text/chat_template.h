// hal/text/chat_template.h: a model's chat template (tokenizer_config.json
// "chat_template"), rendered the way transformers renders it: Jinja with trim_blocks and
// lstrip_blocks, raise_exception(), strftime_now(), the tojson filter, loop controls and
// {% generation %} blocks.
//
// The interpreter is strict: it implements the Jinja subset chat templates use
// (statements if/elif/else, for (with loop.*, else, break/continue), set (also
// namespace attributes), generation; expressions with Python semantics for strings,
// numbers, lists and dicts, slicing, string and dict methods, filters and tests listed in
// src/jinja_eval.cc) and refuses anything else: a template using a construct outside the
// subset fails to parse or render with INVALID_ARGUMENT naming the construct and its line
// ("chat template 'default': line 3: unsupported statement 'macro'"), never a silently
// different prompt. A template's raise_exception(msg) is INVALID_ARGUMENT carrying msg.
// Templates are data from a model repository: nesting (200 levels) and the work of one
// render (200,000 steps; output 64 MiB) are bounded, beyond which rendering fails.
//
// Checked against jinja2 itself on the families' formats (Llama 3, ChatML/Qwen,
// Mistral) and on a feature template (tests/text/goldens/chat).
//
// Threading: a parsed template is immutable; render() may run on several threads.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "hal/status.h"

namespace hal::text {

namespace detail::jinja {
struct Template;
}

class ChatTemplate {
 public:
  // `name` names the template in errors (its name in tokenizer_config.json).
  static Result<ChatTemplate> parse(std::string_view source, std::string_view name);

  // Renders with `variables` as the template's globals, typically: messages (a list of
  // {"role", "content", ...}), add_generation_prompt, bos_token, eos_token, tools.
  Result<std::string> render(const nlohmann::ordered_json& variables) const;

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

 private:
  std::string name_, source_;
  std::shared_ptr<const detail::jinja::Template> template_;
};

}  // namespace hal::text

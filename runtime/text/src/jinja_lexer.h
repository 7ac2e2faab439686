// jinja_lexer.h (internal): Jinja template text -> tokens, with the whitespace rules
// transformers renders chat templates with: trim_blocks (the newline after a block or
// comment tag goes), lstrip_blocks (a block or comment tag alone on its line takes its
// indentation with it), "-" markers, newlines normalized to \n and one trailing newline
// dropped (keep_trailing_newline=False). {% raw %} blocks become text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hal/status.h"

namespace hal::text::detail::jinja {

struct Token {
  enum Type {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEof
  } type;
  std::string text;
  int line = 0;
  int64_t i = 0;
  double f = 0;
};

// The tokens of `source`, ending in kEof; errors name the template and line.
Result<std::vector<Token>> lex(std::string_view source, std::string_view name);

// "chat template 'NAME': line N: ", the prefix of every template error.
std::string error_prefix(std::string_view name, int line);

}  // namespace hal::text::detail::jinja

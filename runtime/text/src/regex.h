// regex.h (internal): the split and replace patterns of tokenizer.json, compiled with
// PCRE2 in UTF + UCP mode (Unicode properties for \p{L}, \s, \w) and JIT.
//
// Hugging Face compiles these patterns with Oniguruma; the syntax the tokenizer families
// use ((?i:...), \p{L}, \p{N}, \s, lookahead, {1,3}) means the same in PCRE2, which the
// golden tests confirm family by family.
//
// Threading: a compiled Regex is immutable; matching uses per-thread match data.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hal/status.h"

namespace hal::text::detail {

class Regex {
 public:
  // INVALID_ARGUMENT naming `what` and PCRE2's message when `pattern` does not compile.
  static Result<Regex> compile(std::string_view pattern, std::string_view what);
  // A literal (every character matches itself), for {"String": ...} patterns.
  static Regex literal(std::string_view text);

  // Calls on_match(start, end) for each non-overlapping match of `text` (valid UTF-8),
  // left to right, like Rust's find_iter. Fails only when PCRE2 gives up (a resource
  // limit), never by splitting differently.
  template <typename F>
  Status for_each_match(std::string_view text, F&& on_match) const {
    size_t pos = 0;
    size_t start = 0, end = 0;
    while (pos <= text.size()) {
      const int found = find(text, pos, &start, &end);
      if (found < 0) return match_error(found, text.size());
      if (found == 0) break;
      on_match(start, end);
      if (end > start) {
        pos = end;
      } else {  // an empty match: move on by one character
        pos = end + 1;
        while (pos < text.size() && (uint8_t(text[pos]) & 0xC0) == 0x80) ++pos;
      }
    }
    return ok_status();
  }
  const std::string& pattern() const { return pattern_; }

 private:
  // 1: a match in [*start, *end); 0: none; < 0: a PCRE2 error code.
  int find(std::string_view text, size_t from, size_t* start, size_t* end) const;
  Status match_error(int code, size_t text_size) const;
  std::shared_ptr<void> code_;  // pcre2_code_8
  std::string pattern_;
  std::string literal_;  // non-empty: a plain substring search instead of PCRE2
  bool is_literal_ = false;
};

}  // namespace hal::text::detail

// unicode.h (internal): the Unicode operations the normalizers and added-token rules need,
// from ICU (normalization forms, character properties, case mapping). No tables of our own.
//
// Threading: pure functions (ICU's normalizer instances are immutable singletons).
#pragma once

#include <string>
#include <string_view>

#include "hal/status.h"

namespace hal::text::detail {

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// `text` (valid UTF-8) in normalization form `form`.
Result<std::string> normalize(NormalForm form, std::string_view text);
// True when `text` is already in `form` (a quick check that skips the conversion).
bool is_normalized(NormalForm form, std::string_view text);

// Unicode White_Space (what Rust's char::is_whitespace and regex \s match).
bool is_whitespace(char32_t c);
// Rust regex's \w: Alphabetic, marks, decimal numbers, connector punctuation, Join_Control.
bool is_word_char(char32_t c);
// Rust's char::is_numeric: general categories Nd, Nl, No.
bool is_numeric(char32_t c);
// Rust's char::is_alphanumeric: Alphabetic or numeric.
bool is_alphanumeric(char32_t c);
// Unicode punctuation (general category P*), as Hugging Face's Punctuation splitter.
bool is_punctuation(char32_t c);

// Each character replaced by its full lowercase mapping, character by character (no
// context-dependent rules: what Rust's char::to_lowercase gives).
std::string lowercase(std::string_view text);

}  // namespace hal::text::detail

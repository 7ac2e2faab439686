// hal/text/utf8.h: UTF-8 checks and the replacement rules decoders use.
//
// Why: tokens are byte strings. A token may end in the middle of a character (byte-level
// BPE, byte fallback), so text is only valid once the next token completes it, and a
// sequence of ids no encoder would make (sampled output, a user's --ids) may never be.
// Every decoder here repairs invalid bytes the way Hugging Face does (Rust's
// String::from_utf8_lossy): each maximal ill-formed subpart becomes one U+FFFD
// (Unicode's "substitution of maximal subparts").
//
// Contract
// - validate_utf8() accepts exactly the well-formed UTF-8 of the Unicode standard
//   (no overlongs, no surrogates, nothing above U+10FFFF).
// - next_char_length() classifies the bytes at the front of a buffer: a whole valid
//   character, an incomplete but so far valid prefix (needs more bytes), or an ill-formed
//   subpart of known length.
//
// Threading: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "hal/status.h"

namespace hal::text {

// The replacement character U+FFFD in UTF-8.
inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

// OK, or INVALID_ARGUMENT naming `what` and the byte offset of the first ill-formed
// sequence: "--text: not valid UTF-8 at byte 3 (0xFF)".
Status validate_utf8(std::string_view text, std::string_view what);
bool is_valid_utf8(std::string_view text);

// What the bytes at the front of `bytes` are.
struct CharScan {
  enum Kind { kChar, kIncomplete, kInvalid } kind;
  // kChar: bytes of the character; kIncomplete: bytes present (a valid prefix);
  // kInvalid: bytes of the maximal ill-formed subpart (>= 1), replaced by one U+FFFD.
  size_t length;
};
// Precondition: !bytes.empty().
CharScan scan_char(std::string_view bytes);

// Appends `bytes` to `out` with every maximal ill-formed subpart replaced by U+FFFD
// (an incomplete sequence at the end is ill-formed too).
void append_utf8_lossy(std::string_view bytes, std::string& out);
std::string utf8_lossy(std::string_view bytes);

// The code point at the front of valid UTF-8 and its length in bytes.
// Precondition: `text` starts with a whole valid character.
char32_t decode_char(std::string_view text, size_t* length);
// Appends the UTF-8 encoding of `c` (a Unicode scalar value) to `out`.
void append_char(char32_t c, std::string& out);

}  // namespace hal::text

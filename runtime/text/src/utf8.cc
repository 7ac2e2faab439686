// UTF-8 scanning by the well-formed byte sequences of the Unicode standard (table 3-7).
#include "hal/text/utf8.h"

#include <cstdio>

namespace hal::text {

namespace {

// The allowed range of the second byte after lead byte `lead` (table 3-7); later bytes
// are 0x80..0xBF.
struct SecondByteRange {
  uint8_t lo, hi;
};
inline SecondByteRange second_byte_range(uint8_t lead) {
  switch (lead) {
    case 0xE0:
      return {0xA0, 0xBF};  // no overlongs
    case 0xED:
      return {0x80, 0x9F};  // no surrogates
    case 0xF0:
      return {0x90, 0xBF};  // no overlongs
    case 0xF4:
      return {0x80, 0x8F};  // nothing above U+10FFFF
    default:
      return {0x80, 0xBF};
  }
}

// Bytes in the character a lead byte starts; 0 for bytes that cannot start one.
inline size_t sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

}  // namespace

CharScan scan_char(std::string_view bytes) {
  const uint8_t lead = uint8_t(bytes[0]);
  const size_t need = sequence_length(lead);
  if (need == 1) return {CharScan::kChar, 1};
  if (need == 0) return {CharScan::kInvalid, 1};
  for (size_t i = 1; i < need; ++i) {
    if (i >= bytes.size()) return {CharScan::kIncomplete, i};
    const uint8_t b = uint8_t(bytes[i]);
    const SecondByteRange r = i == 1 ? second_byte_range(lead) : SecondByteRange{0x80, 0xBF};
    if (b < r.lo || b > r.hi) return {CharScan::kInvalid, i};
  }
  return {CharScan::kChar, need};
}

Status validate_utf8(std::string_view text, std::string_view what) {
  size_t i = 0;
  while (i < text.size()) {
    if (uint8_t(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const CharScan s = scan_char(text.substr(i));
    if (s.kind != CharScan::kChar) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", unsigned(uint8_t(text[i])));
      return invalid_argument(std::string(what) + ": not valid UTF-8 at byte " + std::to_string(i) +
                              " (" + hex +
                              (s.kind == CharScan::kIncomplete ? ", truncated character)" : ")"));
    }
    i += s.length;
  }
  return ok_status();
}

bool is_valid_utf8(std::string_view text) { return validate_utf8(text, "").ok(); }

void append_utf8_lossy(std::string_view bytes, std::string& out) {
  size_t i = 0, run = 0;  // [run, i) is valid and not yet copied
  while (i < bytes.size()) {
    if (uint8_t(bytes[i]) < 0x80) {
      ++i;
      continue;
    }
    const CharScan s = scan_char(bytes.substr(i));
    if (s.kind == CharScan::kChar) {
      i += s.length;
      continue;
    }
    out.append(bytes.data() + run, i - run);
    out.append(kReplacementChar);
    i += s.length;
    run = i;
  }
  out.append(bytes.data() + run, i - run);
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  append_utf8_lossy(bytes, out);
  return out;
}

char32_t decode_char(std::string_view text, size_t* length) {
  const uint8_t b0 = uint8_t(text[0]);
  if (b0 < 0x80) {
    *length = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *length = 2;
    return char32_t(b0 & 0x1F) << 6 | (uint8_t(text[1]) & 0x3F);
  }
  if (b0 < 0xF0) {
    *length = 3;
    return char32_t(b0 & 0x0F) << 12 | char32_t(uint8_t(text[1]) & 0x3F) << 6 |
           (uint8_t(text[2]) & 0x3F);
  }
  *length = 4;
  return char32_t(b0 & 0x07) << 18 | char32_t(uint8_t(text[1]) & 0x3F) << 12 |
         char32_t(uint8_t(text[2]) & 0x3F) << 6 | (uint8_t(text[3]) & 0x3F);
}

void append_char(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(char(c));
  } else if (c < 0x800) {
    out.push_back(char(0xC0 | (c >> 6)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(char(0xE0 | (c >> 12)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (c >> 18)));
    out.push_back(char(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(char(0x80 | (c & 0x3F)));
  }
}

}  // namespace hal::text

#include "unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/ustring.h>

#include "hal/text/utf8.h"

namespace hal::text::detail {

namespace {

const icu::Normalizer2* normalizer_for(NormalForm form, UErrorCode& status) {
  switch (form) {
    case NormalForm::kNFC:
      return icu::Normalizer2::getNFCInstance(status);
    case NormalForm::kNFD:
      return icu::Normalizer2::getNFDInstance(status);
    case NormalForm::kNFKC:
      return icu::Normalizer2::getNFKCInstance(status);
    case NormalForm::kNFKD:
      return icu::Normalizer2::getNFKDInstance(status);
  }
  return nullptr;
}

}  // namespace

Result<std::string> normalize(NormalForm form, std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = normalizer_for(form, status);
  if (U_FAILURE(status) || !n)
    return internal_error(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), int32_t(text.size())));
  if (n->isNormalized(in, status) && U_SUCCESS(status)) return std::string(text);
  status = U_ZERO_ERROR;
  const icu::UnicodeString out = n->normalize(in, status);
  if (U_FAILURE(status))
    return internal_error(std::string("ICU normalization failed: ") + u_errorName(status));
  std::string result;
  out.toUTF8String(result);
  return result;
}

bool is_normalized(NormalForm form, std::string_view text) {
  // ASCII is in every form.
  bool ascii = true;
  for (char c : text) ascii &= uint8_t(c) < 0x80;
  if (ascii) return true;
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = normalizer_for(form, status);
  if (U_FAILURE(status) || !n) return false;
  const icu::UnicodeString in =
      icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), int32_t(text.size())));
  const bool yes = n->isNormalized(in, status);
  return U_SUCCESS(status) && yes;
}

bool is_whitespace(char32_t c) { return u_hasBinaryProperty(UChar32(c), UCHAR_WHITE_SPACE); }

bool is_word_char(char32_t c) {
  if (u_hasBinaryProperty(UChar32(c), UCHAR_ALPHABETIC)) return true;
  if (u_hasBinaryProperty(UChar32(c), UCHAR_JOIN_CONTROL)) return true;
  switch (u_charType(UChar32(c))) {
    case U_NON_SPACING_MARK:
    case U_COMBINING_SPACING_MARK:
    case U_ENCLOSING_MARK:
    case U_DECIMAL_DIGIT_NUMBER:
    case U_CONNECTOR_PUNCTUATION:
      return true;
    default:
      return false;
  }
}

bool is_numeric(char32_t c) {
  switch (u_charType(UChar32(c))) {
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return true;
    default:
      return false;
  }
}

bool is_alphanumeric(char32_t c) {
  return u_hasBinaryProperty(UChar32(c), UCHAR_ALPHABETIC) || is_numeric(c);
}

bool is_punctuation(char32_t c) { return u_ispunct(UChar32(c)) != 0; }

std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 0;
    const char32_t c = decode_char(text.substr(i), &len);
    i += len;
    if (c < 0x80) {
      out.push_back(char(c >= 'A' && c <= 'Z' ? c + 32 : c));
      continue;
    }
    // The full mapping of the character alone: no neighbours, so no Final_Sigma context.
    UChar in[2];
    int32_t in_len = 0;
    U16_APPEND_UNSAFE(in, in_len, UChar32(c));
    UChar lowered[8];
    UErrorCode status = U_ZERO_ERROR;
    const int32_t n = u_strToLower(lowered, 8, in, in_len, "", &status);
    if (U_FAILURE(status)) {
      append_char(c, out);
      continue;
    }
    for (int32_t k = 0; k < n;) {
      UChar32 lc;
      U16_NEXT_UNSAFE(lowered, k, lc);
      append_char(char32_t(lc), out);
    }
  }
  return out;
}

}  // namespace hal::text::detail

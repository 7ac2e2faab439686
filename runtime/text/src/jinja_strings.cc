// Python's string operations as Jinja templates see them (jinja_builtins.h), on UTF-8 text
// with ICU for character properties and case mapping.
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>

#include "hal/text/utf8.h"
#include "jinja_builtins.h"

namespace hal::text::detail::jinja {

bool is_py_space(char32_t c) {
  return (c >= 0x1C && c <= 0x1F) || u_hasBinaryProperty(UChar32(c), UCHAR_WHITE_SPACE);
}

std::string upper(std::string_view s) {
  std::string out;
  icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())))
      .toUpper(icu::Locale::getRoot())
      .toUTF8String(out);
  return out;
}
std::string lower(std::string_view s) {
  std::string out;
  icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), int32_t(s.size())))
      .toLower(icu::Locale::getRoot())
      .toUTF8String(out);
  return out;
}
// Python's str.capitalize(): the first character titlecased, the rest lowercased.
std::string capitalize(std::string_view s) {
  if (s.empty()) return {};
  size_t len = 0;
  const char32_t c = decode_char(s, &len);
  std::string out;
  append_char(char32_t(u_totitle(UChar32(c))), out);
  return out + lower(s.substr(len));
}
// jinja2's title filter: each word (split at whitespace, -, (, {, [, <) capitalized.
std::string title_filter(std::string_view s) {
  std::string out, word;
  auto flush = [&] {
    if (!word.empty()) out += capitalize(word);
    word.clear();
  };
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    const char32_t c = decode_char(s.substr(i), &len);
    if (is_py_space(c) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<') {
      flush();
      out.append(s.substr(i, len));
    } else {
      word.append(s.substr(i, len));
    }
    i += len;
  }
  flush();
  return out;
}
// Python's str.title(): a cased character after an uncased one starts a word.
std::string title_method(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (std::string_view c : code_points(s)) {
    size_t len = 0;
    const char32_t cp = decode_char(c, &len);
    const bool cased = u_hasBinaryProperty(UChar32(cp), UCHAR_CASED);
    if (cased && !previous_cased)
      append_char(char32_t(u_totitle(UChar32(cp))), out);
    else
      out += lower(c);
    previous_cased = cased;
  }
  return out;
}

// Python's str.strip / lstrip / rstrip (whitespace, or the characters of `chars`).
std::string strip(std::string_view s, const Value* chars, bool left, bool right) {
  const std::vector<std::string_view> cs = code_points(s);
  std::vector<std::string_view> set;
  const bool use_set = chars && chars->is_string();
  if (use_set) set = code_points(chars->s);
  auto stripped = [&](std::string_view c) {
    if (use_set) return std::find(set.begin(), set.end(), c) != set.end();
    size_t len = 0;
    return is_py_space(decode_char(c, &len));
  };
  size_t b = 0, e = cs.size();
  while (left && b < e && stripped(cs[b])) ++b;
  while (right && e > b && stripped(cs[e - 1])) --e;
  std::string out;
  for (size_t k = b; k < e; ++k) out.append(cs[k]);
  return out;
}

// Python's str.split(sep=None, maxsplit=-1), and rsplit when `from_right`.
Result<Value> split(std::string_view s, const Value* sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (!sep || sep->is_none()) {
    std::vector<std::string_view> cs = code_points(s);
    if (from_right) std::reverse(cs.begin(), cs.end());
    std::string word;
    bool in_word = false;
    size_t k = 0;
    for (; k < cs.size(); ++k) {
      size_t len = 0;
      const bool space = is_py_space(decode_char(cs[k], &len));
      if (space) {
        if (in_word) {
          parts.push_back(word);
          word.clear();
          in_word = false;
          if (maxsplit >= 0 && int64_t(parts.size()) == maxsplit) break;
        }
      } else {
        in_word = true;
        word.append(cs[k]);
      }
    }
    if (in_word) parts.push_back(word);
    if (k < cs.size()) {  // maxsplit reached: the rest (without leading space) is one part
      while (k < cs.size()) {
        size_t len = 0;
        if (!is_py_space(decode_char(cs[k], &len))) break;
        ++k;
      }
      std::string rest;
      for (; k < cs.size(); ++k) rest.append(cs[k]);
      if (!rest.empty()) parts.push_back(rest);
    }
    if (from_right) {
      for (std::string& p : parts) {
        std::vector<std::string_view> pc = code_points(p);
        std::string r;
        for (auto it = pc.rbegin(); it != pc.rend(); ++it) r.append(*it);
        p = r;
      }
      std::reverse(parts.begin(), parts.end());
    }
  } else {
    if (!sep->is_string()) return invalid_argument("split(): the separator must be a string");
    if (sep->s.empty()) return invalid_argument("split(): empty separator");
    std::string_view rest = s;
    while (maxsplit < 0 || int64_t(parts.size()) < maxsplit) {
      const size_t at = from_right ? rest.rfind(sep->s) : rest.find(sep->s);
      if (at == std::string_view::npos) break;
      if (from_right) {
        parts.emplace_back(rest.substr(at + sep->s.size()));
        rest = rest.substr(0, at);
      } else {
        parts.emplace_back(rest.substr(0, at));
        rest = rest.substr(at + sep->s.size());
      }
    }
    parts.emplace_back(rest);
    if (from_right) std::reverse(parts.begin(), parts.end());
  }
  std::vector<Value> out;
  for (std::string& p : parts) out.push_back(Value::string(std::move(p)));
  return Value::make_list(std::move(out));
}

int64_t length_of(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kString:
      return int64_t(code_points(v.s).size());
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return int64_t(v.list->size());
    case Value::Kind::kDict:
    case Value::Kind::kNamespace:
      return int64_t(v.dict->items.size());
    default:
      return 0;
  }
}

Result<std::vector<Value>> items_of(const Value& v, std::string_view what) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return std::vector<Value>();
    case Value::Kind::kList:
    case Value::Kind::kTuple:
      return *v.list;
    case Value::Kind::kString: {
      std::vector<Value> out;
      for (std::string_view c : code_points(v.s)) out.push_back(Value::string(std::string(c)));
      return out;
    }
    case Value::Kind::kDict: {
      std::vector<Value> out;
      for (const auto& [k, _] : v.dict->items) out.push_back(Value::string(k));
      return out;
    }
    default:
      return invalid_argument(std::string(what) + ": '" + v.str() + "' is not iterable");
  }
}

// A sort / unique / min / max key: the attribute, and strings folded unless case-sensitive.

}  // namespace hal::text::detail::jinja

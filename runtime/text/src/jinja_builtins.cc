// Jinja builtins chat templates use: filters, tests, string and dict methods, and the
// global functions transformers provides (raise_exception, strftime_now) besides jinja2's
// (range, namespace, dict). Anything else is an error naming it.
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "hal/text/utf8.h"
#include "jinja.h"

namespace hal::text::detail::jinja {

namespace {

const char* kFilters =
    "abs, capitalize, count, d, default, dictsort, e, escape, first, float, indent, int, items, "
    "join, last, length, list, lower, map, max, min, replace, reject, rejectattr, reverse, round, "
    "safe, select, selectattr, sort, string, sum, title, tojson, trim, unique, upper, wordcount";
const char* kTests =
    "boolean, callable, defined, divisibleby, eq, equalto, escaped, even, false, float, ge, gt, "
    "in, integer, iterable, le, lower, lt, mapping, ne, none, number, odd, sameas, sequence, "
    "string, true, undefined, upper, ==, !=, <, <=, >, >=";

Value function(std::string name, std::function<Result<Value>(const Args&, const KwArgs&)> call) {
  auto fn = std::make_shared<Function>();
  fn->name = std::move(name);
  fn->call = std::move(call);
  Value v;
  v.kind = Value::Kind::kFunction;
  v.fn = std::move(fn);
  return v;
}

// Positional-or-keyword arguments of a builtin.
struct Params {
  const Args& args;
  const KwArgs& kwargs;
  const Value* get(size_t index, std::string_view name) const {
    for (const auto& [k, v] : kwargs)
      if (k == name) return &v;
    return index < args.size() ? &args[index] : nullptr;
  }
  bool flag(size_t index, std::string_view name, bool fallback) const {
    const Value* v = get(index, name);
    return v ? v->truthy() : fallback;
  }
};

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
Value sort_key(const Value& v, const Value* attribute, bool case_sensitive) {
  // jinja2's attribute getters look the item up first, then the attribute.
  Value k = attribute && attribute->is_string() ? get_item(v, *attribute) : v;
  if (!case_sensitive && k.is_string()) k.s = lower(k.s);
  return k;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

Result<Value> select_like(const Value& value, const Args& args, bool by_attribute, bool keep) {
  HAL_ASSIGN_OR_RETURN(std::vector<Value> items, items_of(value, "select"));
  size_t next = 0;
  std::string attribute;
  if (by_attribute) {
    if (args.empty() || !args[0].is_string())
      return invalid_argument("selectattr/rejectattr need an attribute name");
    attribute = args[0].s;
    next = 1;
  }
  std::string test;
  if (next < args.size()) {
    if (!args[next].is_string()) return invalid_argument("select: the test must be a name");
    test = args[next].s;
    ++next;
  }
  const Args test_args(args.begin() + std::ptrdiff_t(std::min(next, args.size())), args.end());
  std::vector<Value> out;
  for (const Value& item : items) {
    Value subject = item;
    if (by_attribute) subject = get_item(item, Value::string(attribute));
    bool pass = subject.truthy();
    if (!test.empty()) {
      HAL_ASSIGN_OR_RETURN(pass, apply_test(test, subject, test_args));
    }
    if (pass == keep) out.push_back(item);
  }
  return Value::make_list(std::move(out));
}

Value string_method(const std::string& s, std::string_view name) {
  const std::string n(name);
  auto method = [&](auto body) {
    return function("str." + n, [s, body](const Args& a, const KwArgs& k) -> Result<Value> {
      return body(Params{a, k});
    });
  };
  if (n == "strip" || n == "lstrip" || n == "rstrip")
    return method([s, n](const Params& p) -> Result<Value> {
      return Value::string(strip(s, p.get(0, "chars"), n != "rstrip", n != "lstrip"));
    });
  if (n == "startswith" || n == "endswith")
    return method([s, n](const Params& p) -> Result<Value> {
      const Value* prefix = p.get(0, "prefix");
      if (!prefix) return invalid_argument(n + "() needs an argument");
      std::vector<Value> options;
      if (prefix->is_sequence())
        options = *prefix->list;
      else
        options.push_back(*prefix);
      for (const Value& o : options) {
        if (!o.is_string()) return invalid_argument(n + "(): arguments must be strings");
        if (n == "startswith" ? std::string_view(s).starts_with(o.s)
                              : std::string_view(s).ends_with(o.s))
          return Value::boolean(true);
      }
      return Value::boolean(false);
    });
  if (n == "split" || n == "rsplit")
    return method([s, n](const Params& p) -> Result<Value> {
      const Value* max = p.get(1, "maxsplit");
      return split(s, p.get(0, "sep"), max && max->kind == Value::Kind::kInt ? max->i : -1,
                   n == "rsplit");
    });
  if (n == "splitlines")
    return method([s](const Params&) -> Result<Value> {
      std::vector<Value> out;
      size_t start = 0;
      for (size_t k = 0; k < s.size(); ++k)
        if (s[k] == '\n' || s[k] == '\r') {
          out.push_back(Value::string(s.substr(start, k - start)));
          if (s[k] == '\r' && k + 1 < s.size() && s[k + 1] == '\n') ++k;
          start = k + 1;
        }
      if (start < s.size()) out.push_back(Value::string(s.substr(start)));
      return Value::make_list(std::move(out));
    });
  if (n == "upper")
    return method([s](const Params&) -> Result<Value> { return Value::string(upper(s)); });
  if (n == "lower")
    return method([s](const Params&) -> Result<Value> { return Value::string(lower(s)); });
  if (n == "title")
    return method([s](const Params&) -> Result<Value> { return Value::string(title_method(s)); });
  if (n == "capitalize")
    return method([s](const Params&) -> Result<Value> { return Value::string(capitalize(s)); });
  if (n == "replace")
    return method([s](const Params& p) -> Result<Value> {
      const Value* from = p.get(0, "old");
      const Value* to = p.get(1, "new");
      const Value* count = p.get(2, "count");
      if (!from || !to || !from->is_string() || !to->is_string())
        return invalid_argument("replace() needs two strings");
      return apply_filter("replace", Value::string(s),
                          count ? Args{*from, *to, *count} : Args{*from, *to}, {});
    });
  if (n == "find" || n == "rfind" || n == "count")
    return method([s, n](const Params& p) -> Result<Value> {
      const Value* sub = p.get(0, "sub");
      if (!sub || !sub->is_string()) return invalid_argument(n + "() needs a string");
      if (n == "count") {
        if (sub->s.empty()) return Value::integer(int64_t(code_points(s).size()) + 1);
        int64_t c = 0;
        for (size_t at = s.find(sub->s); at != std::string::npos;
             at = s.find(sub->s, at + sub->s.size()))
          ++c;
        return Value::integer(c);
      }
      const size_t at = n == "find" ? s.find(sub->s) : s.rfind(sub->s);
      if (at == std::string::npos) return Value::integer(-1);
      return Value::integer(int64_t(code_points(std::string_view(s).substr(0, at)).size()));
    });
  if (n == "join")
    return method([s](const Params& p) -> Result<Value> {
      const Value* items = p.get(0, "iterable");
      if (!items) return invalid_argument("join() needs an iterable");
      HAL_ASSIGN_OR_RETURN(std::vector<Value> list, items_of(*items, "join"));
      std::string out;
      for (size_t k = 0; k < list.size(); ++k) {
        if (!list[k].is_string()) return invalid_argument("join(): items must be strings");
        out += (k ? s : "") + list[k].s;
      }
      return Value::string(std::move(out));
    });
  if (n == "isdigit" || n == "isalpha" || n == "isspace" || n == "isupper" || n == "islower" ||
      n == "isalnum")
    return method([s, n](const Params&) -> Result<Value> {
      if (s.empty()) return Value::boolean(false);
      bool all = true, any_cased = false;
      for (std::string_view c : code_points(s)) {
        size_t len = 0;
        const UChar32 cp = UChar32(decode_char(c, &len));
        if (n == "isdigit") all &= u_isdigit(cp) != 0;
        if (n == "isalpha") all &= u_isalpha(cp) != 0;
        if (n == "isalnum") all &= u_isalnum(cp) != 0;
        if (n == "isspace") all &= is_py_space(char32_t(cp));
        if (n == "isupper") {
          all &= !u_islower(cp);
          any_cased |= u_isupper(cp) != 0;
        }
        if (n == "islower") {
          all &= !u_isupper(cp);
          any_cased |= u_islower(cp) != 0;
        }
      }
      if (n == "isupper" || n == "islower") all &= any_cased;
      return Value::boolean(all);
    });
  return Value::undefined();
}

Value dict_method(const Value& d, std::string_view name) {
  const std::string n(name);
  if (n == "items" || n == "keys" || n == "values")
    return function("dict." + n, [d, n](const Args&, const KwArgs&) -> Result<Value> {
      std::vector<Value> out;
      for (const auto& [k, v] : d.dict->items) {
        if (n == "items")
          out.push_back(Value::make_list({Value::string(k), v}, true));
        else if (n == "keys")
          out.push_back(Value::string(k));
        else
          out.push_back(v);
      }
      return Value::make_list(std::move(out));
    });
  if (n == "get")
    return function("dict.get", [d](const Args& a, const KwArgs& k) -> Result<Value> {
      const Params p{a, k};
      const Value* key = p.get(0, "key");
      if (!key) return invalid_argument("get() needs a key");
      if (key->is_string())
        if (const Value* v = d.dict->find(key->s)) return *v;
      const Value* fallback = p.get(1, "default");
      return fallback ? *fallback : Value::none();
    });
  return Value::undefined();
}

}  // namespace

Value get_attribute(const Value& value, std::string_view name) {
  switch (value.kind) {
    case Value::Kind::kDict: {
      Value m = dict_method(value, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = value.dict->find(name)) return *v;
      return Value::undefined();
    }
    case Value::Kind::kNamespace:
      if (const Value* v = value.dict->find(name)) return *v;
      return Value::undefined();
    case Value::Kind::kString:
      return string_method(value.s, name);
    default:
      return Value::undefined();
  }
}

Value get_item(const Value& value, const Value& key) {
  if ((value.is_sequence() || value.is_string()) && key.kind == Value::Kind::kInt) {
    std::vector<std::string_view> chars;
    if (value.is_string()) chars = code_points(value.s);
    const int64_t n = value.is_string() ? int64_t(chars.size()) : int64_t(value.list->size());
    const int64_t k = key.i < 0 ? key.i + n : key.i;
    if (k < 0 || k >= n) return Value::undefined();
    if (value.is_string()) return Value::string(std::string(chars[size_t(k)]));
    return (*value.list)[size_t(k)];
  }
  if (value.is_mapping() && key.is_string())
    if (const Value* v = value.dict->find(key.s)) return *v;
  if (key.is_string()) return get_attribute(value, key.s);
  return Value::undefined();
}

Result<bool> apply_test(std::string_view name_view, const Value& v, const Args& args) {
  const std::string name(name_view);
  using K = Value::Kind;
  auto arg = [&]() -> Result<Value> {
    if (args.empty()) return invalid_argument("test '" + name + "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == K::kBool;
  if (name == "true") return v.kind == K::kBool && v.b;
  if (name == "false") return v.kind == K::kBool && !v.b;
  if (name == "integer") return v.kind == K::kInt;
  if (name == "float") return v.kind == K::kFloat;
  if (name == "number") return v.is_number() || v.kind == K::kBool;
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.kind == K::kDict;
  if (name == "iterable")
    return v.is_sequence() || v.is_string() || v.kind == K::kDict || v.is_undefined();
  if (name == "sequence") return v.is_sequence() || v.is_string() || v.kind == K::kDict;
  if (name == "callable") return v.kind == K::kFunction;
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    return name == "lower" ? lower(v.s) == v.s : upper(v.s) == v.s;
  }
  if (name == "odd" || name == "even") {
    if (v.kind != K::kInt) return invalid_argument("test '" + name + "' needs an integer");
    return (v.i % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    HAL_ASSIGN_OR_RETURN(const Value d, arg());
    if (v.kind != K::kInt || d.kind != K::kInt || d.i == 0)
      return invalid_argument("divisibleby needs integers (and a non-zero divisor)");
    return v.i % d.i == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==" || name == "sameas") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    return equal(v, o);
  }
  if (name == "ne" || name == "!=") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    return !equal(v, o);
  }
  if (name == "lt" || name == "lessthan" || name == "<") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    return less(v, o);
  }
  if (name == "gt" || name == "greaterthan" || name == ">") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    return less(o, v);
  }
  if (name == "le" || name == "<=") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    HAL_ASSIGN_OR_RETURN(const bool r, less(o, v));
    return !r;
  }
  if (name == "ge" || name == ">=") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    HAL_ASSIGN_OR_RETURN(const bool r, less(v, o));
    return !r;
  }
  if (name == "in") {
    HAL_ASSIGN_OR_RETURN(const Value o, arg());
    if (o.is_string()) return v.is_string() && o.s.find(v.s) != std::string::npos;
    if (o.is_mapping()) return v.is_string() && o.dict->find(v.s);
    if (o.is_sequence())
      return std::any_of(o.list->begin(), o.list->end(),
                         [&](const Value& x) { return equal(x, v); });
    return invalid_argument("test 'in' needs a container");
  }
  return invalid_argument("unsupported Jinja test '" + name + "' (supported: " + kTests + ")");
}

Result<Value> apply_filter(std::string_view name_view, const Value& v, const Args& args,
                           const KwArgs& kwargs) {
  const std::string name(name_view);
  const Params p{args, kwargs};
  using K = Value::Kind;
  auto need_string = [&]() -> Status {
    if (v.is_undefined()) return ok_status();
    if (!v.is_string())
      return invalid_argument("filter '" + name + "' needs a string, got " + v.repr());
    return ok_status();
  };
  if (name == "default" || name == "d") {
    const Value* fallback = p.get(0, "default_value");
    const bool boolean = p.flag(1, "boolean", false);
    if (v.is_undefined() || (boolean && !v.truthy()))
      return fallback ? *fallback : Value::string("");
    return v;
  }
  if (name == "length" || name == "count") return Value::integer(length_of(v));
  if (name == "string") return Value::string(v.str());
  if (name == "safe") return v;
  if (name == "escape" || name == "e") return Value::string(html_escape(v.str()));
  if (name == "tojson") {
    const Value* indent = p.get(0, "indent");
    const Value* ensure_ascii = p.get(99, "ensure_ascii");
    if (ensure_ascii && ensure_ascii->truthy())
      return invalid_argument("tojson(ensure_ascii=true) is not supported");
    if (p.get(99, "separators") && !p.get(99, "separators")->is_none())
      return invalid_argument("tojson(separators=...) is not supported");
    Value subject = v;
    if (p.flag(99, "sort_keys", false) && v.kind == K::kDict) {
      Dict sorted = *v.dict;
      std::stable_sort(sorted.items.begin(), sorted.items.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      subject = Value::make_dict(std::move(sorted));
    }
    HAL_ASSIGN_OR_RETURN(std::string json,
                         to_json(subject, indent && indent->kind == K::kInt ? int(indent->i) : -1));
    return Value::string(std::move(json));
  }
  if (name == "trim") {
    HAL_RETURN_IF_ERROR(need_string());
    return Value::string(strip(v.s, p.get(0, "chars"), true, true));
  }
  if (name == "upper" || name == "lower" || name == "capitalize" || name == "title") {
    HAL_RETURN_IF_ERROR(need_string());
    return Value::string(name == "upper"   ? upper(v.s)
                         : name == "lower" ? lower(v.s)
                         : name == "title" ? title_filter(v.s)
                                           : capitalize(v.s));
  }
  if (name == "replace") {
    HAL_RETURN_IF_ERROR(need_string());
    const Value* from = p.get(0, "old");
    const Value* to = p.get(1, "new");
    const Value* count = p.get(2, "count");
    if (!from || !to || !from->is_string() || !to->is_string())
      return invalid_argument("replace needs two strings");
    int64_t left = count && count->kind == K::kInt ? count->i : -1;
    std::string out;
    if (from->s.empty()) {  // Python inserts `to` around every character
      for (std::string_view c : code_points(v.s)) {
        if (left != 0) {
          out += to->s;
          --left;
        }
        out.append(c);
      }
      if (left != 0) out += to->s;
      return Value::string(std::move(out));
    }
    size_t at = 0;
    for (size_t found; left != 0 && (found = v.s.find(from->s, at)) != std::string::npos; --left) {
      out.append(v.s, at, found - at);
      out += to->s;
      at = found + from->s.size();
    }
    out.append(v.s, at, std::string::npos);
    return Value::string(std::move(out));
  }
  if (name == "indent") {
    HAL_RETURN_IF_ERROR(need_string());
    const Value* width = p.get(0, "width");
    const bool first = p.flag(1, "first", false), blank = p.flag(2, "blank", false);
    const std::string pad =
        width && width->is_string()
            ? width->s
            : std::string(
                  size_t(width && width->kind == K::kInt ? std::max<int64_t>(width->i, 0) : 4),
                  ' ');
    std::string out;
    size_t start = 0;
    bool first_line = true;
    while (start <= v.s.size()) {
      const size_t nl = v.s.find('\n', start);
      const std::string_view line = std::string_view(v.s).substr(
          start, nl == std::string::npos ? std::string::npos : nl - start);
      if ((!first_line || first) && (blank || !strip(line, nullptr, true, true).empty()))
        out += pad;
      out.append(line);
      if (nl == std::string::npos) break;
      out.push_back('\n');
      start = nl + 1;
      first_line = false;
    }
    return Value::string(std::move(out));
  }
  if (name == "wordcount") {
    HAL_RETURN_IF_ERROR(need_string());
    HAL_ASSIGN_OR_RETURN(const Value words, split(v.s, nullptr, -1, false));
    return Value::integer(int64_t(words.list->size()));
  }
  if (name == "int" || name == "float") {
    const Value* fallback = p.get(0, "default");
    const Value def = fallback ? *fallback : (name == "int" ? Value::integer(0) : Value::number(0));
    double x = 0;
    if (v.is_number() || v.kind == K::kBool) {
      x = v.as_double();
      if (name == "int" && v.kind == K::kInt) return v;
    } else if (v.is_string()) {
      const std::string t = strip(v.s, nullptr, true, true);
      char* end = nullptr;
      x = std::strtod(t.c_str(), &end);
      if (t.empty() || *end) return def;
    } else {
      return def;
    }
    if (name == "int") return Value::integer(int64_t(std::trunc(x)));
    return Value::number(x);
  }
  if (name == "abs") {
    if (v.kind == K::kInt) return Value::integer(v.i < 0 ? -v.i : v.i);
    if (v.kind == K::kFloat) return Value::number(std::fabs(v.f));
    return invalid_argument("abs needs a number");
  }
  if (name == "round") {
    if (!v.is_number()) return invalid_argument("round needs a number");
    const Value* precision = p.get(0, "precision");
    const Value* method = p.get(1, "method");
    const double scale =
        std::pow(10.0, precision && precision->kind == K::kInt ? double(precision->i) : 0);
    const std::string m = method && method->is_string() ? method->s : "common";
    const double x = v.as_double() * scale;
    const double r = m == "ceil" ? std::ceil(x) : m == "floor" ? std::floor(x) : std::round(x);
    return Value::number(r / scale);
  }
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list({});
    if (v.kind != K::kDict) return invalid_argument("items needs a mapping");
    std::vector<Value> out;
    for (const auto& [k, x] : v.dict->items)
      out.push_back(Value::make_list({Value::string(k), x}, true));
    return Value::make_list(std::move(out));
  }
  if (name == "dictsort") {
    if (v.kind != K::kDict) return invalid_argument("dictsort needs a mapping");
    const bool case_sensitive = p.flag(0, "case_sensitive", false);
    const bool by_value =
        p.get(1, "by") && p.get(1, "by")->is_string() && p.get(1, "by")->s == "value";
    const bool reverse = p.flag(2, "reverse", false);
    std::vector<Value> out;
    for (const auto& [k, x] : v.dict->items)
      out.push_back(Value::make_list({Value::string(k), x}, true));
    Status error;
    std::stable_sort(out.begin(), out.end(), [&](const Value& a, const Value& b) {
      const Value ka = sort_key((*a.list)[by_value ? 1 : 0], nullptr, case_sensitive);
      const Value kb = sort_key((*b.list)[by_value ? 1 : 0], nullptr, case_sensitive);
      auto r = reverse ? less(kb, ka) : less(ka, kb);
      if (!r.ok()) error = r.status();
      return r.value_or(false);
    });
    HAL_RETURN_IF_ERROR(error);
    return Value::make_list(std::move(out));
  }
  HAL_ASSIGN_OR_RETURN(std::vector<Value> items, items_of(v, "filter '" + name + "'"));
  if (name == "list") return Value::make_list(std::move(items));
  if (name == "first")
    return items.empty() ? Value::undefined("first of an empty sequence") : items.front();
  if (name == "last")
    return items.empty() ? Value::undefined("last of an empty sequence") : items.back();
  if (name == "reverse") {
    std::reverse(items.begin(), items.end());
    if (v.is_string()) {
      std::string s;
      for (const Value& c : items) s += c.s;
      return Value::string(std::move(s));
    }
    return Value::make_list(std::move(items));
  }
  if (name == "join") {
    const Value* sep = p.get(0, "d");
    const Value* attribute = p.get(1, "attribute");
    std::string out;
    for (size_t k = 0; k < items.size(); ++k) {
      if (k && sep) out += sep->str();
      out += (attribute ? sort_key(items[k], attribute, true) : items[k]).str();
    }
    return Value::string(std::move(out));
  }
  if (name == "map") {
    const Value* attribute = p.get(99, "attribute");
    std::vector<Value> out;
    if (attribute) {
      const Value* fallback = p.get(99, "default");
      for (const Value& item : items) {
        Value x = sort_key(item, attribute, true);
        out.push_back(x.is_undefined() && fallback ? *fallback : x);
      }
      return Value::make_list(std::move(out));
    }
    if (args.empty() || !args[0].is_string())
      return invalid_argument("map needs attribute= or a filter name");
    const Args rest(args.begin() + 1, args.end());
    for (const Value& item : items) {
      HAL_ASSIGN_OR_RETURN(Value x, apply_filter(args[0].s, item, rest, {}));
      out.push_back(std::move(x));
    }
    return Value::make_list(std::move(out));
  }
  if (name == "select" || name == "reject") return select_like(v, args, false, name == "select");
  if (name == "selectattr" || name == "rejectattr")
    return select_like(v, args, true, name == "selectattr");
  if (name == "unique") {
    const bool case_sensitive = p.flag(0, "case_sensitive", false);
    const Value* attribute = p.get(1, "attribute");
    std::vector<Value> out, seen;
    for (const Value& item : items) {
      const Value key = sort_key(item, attribute, case_sensitive);
      if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return equal(s, key); }))
        continue;
      seen.push_back(key);
      out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "sort" || name == "min" || name == "max") {
    const bool reverse = name == "sort" && p.flag(0, "reverse", false);
    const bool case_sensitive = p.flag(name == "sort" ? 1 : 0, "case_sensitive", false);
    const Value* attribute = p.get(name == "sort" ? 2 : 1, "attribute");
    Status error;
    std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
      const Value ka = sort_key(a, attribute, case_sensitive),
                  kb = sort_key(b, attribute, case_sensitive);
      auto r = reverse ? less(kb, ka) : less(ka, kb);
      if (!r.ok()) error = r.status();
      return r.value_or(false);
    });
    HAL_RETURN_IF_ERROR(error);
    if (name == "sort") return Value::make_list(std::move(items));
    if (items.empty()) return Value::undefined("min/max of an empty sequence");
    return name == "min" ? items.front() : items.back();
  }
  if (name == "sum") {
    const Value* attribute = p.get(0, "attribute");
    const Value* start = p.get(1, "start");
    Value total = start ? *start : Value::integer(0);
    for (const Value& item : items) {
      const Value x = attribute ? sort_key(item, attribute, true) : item;
      if (!x.is_number() || !total.is_number()) return invalid_argument("sum needs numbers");
      total = total.kind == K::kInt && x.kind == K::kInt
                  ? Value::integer(total.i + x.i)
                  : Value::number(total.as_double() + x.as_double());
    }
    return total;
  }
  return invalid_argument("unsupported Jinja filter '" + name + "' (supported: " + kFilters + ")");
}

Value global_function(std::string_view name) {
  if (name == "range")
    return function("range", [](const Args& a, const KwArgs&) -> Result<Value> {
      int64_t start = 0, stop = 0, step = 1;
      for (const Value& x : a)
        if (x.kind != Value::Kind::kInt) return invalid_argument("range() needs integers");
      if (a.size() == 1)
        stop = a[0].i;
      else if (a.size() == 2 || a.size() == 3) {
        start = a[0].i;
        stop = a[1].i;
        if (a.size() == 3) step = a[2].i;
      } else {
        return invalid_argument("range() takes 1 to 3 arguments");
      }
      if (step == 0) return invalid_argument("range() step must not be zero");
      std::vector<Value> out;
      for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
        if (out.size() >= 100000) return invalid_argument("range() too large (over 100000 items)");
        out.push_back(Value::integer(k));
      }
      return Value::make_list(std::move(out));
    });
  if (name == "namespace" || name == "dict")
    return function(std::string(name),
                    [kind = std::string(name)](const Args& a, const KwArgs& k) -> Result<Value> {
                      Dict d;
                      for (const Value& x : a) {
                        if (x.kind != Value::Kind::kDict)
                          return invalid_argument(kind + "() takes keyword arguments or a dict");
                        for (const auto& [key, v] : x.dict->items) d.set(key, v);
                      }
                      for (const auto& [key, v] : k) d.set(key, v);
                      Value out = Value::make_dict(std::move(d));
                      if (kind == "namespace") out.kind = Value::Kind::kNamespace;
                      return out;
                    });
  if (name == "raise_exception")
    return function("raise_exception", [](const Args& a, const KwArgs&) -> Result<Value> {
      return invalid_argument("raise_exception: " +
                              (a.empty() ? std::string("(no message)") : a[0].str()));
    });
  if (name == "strftime_now")
    return function("strftime_now", [](const Args& a, const KwArgs&) -> Result<Value> {
      if (a.empty() || !a[0].is_string())
        return invalid_argument("strftime_now() needs a format string");
      const std::time_t now = std::time(nullptr);
      std::tm local{};
      localtime_r(&now, &local);
      char buf[256];
      const size_t n = std::strftime(buf, sizeof buf, a[0].s.c_str(), &local);
      return Value::string(std::string(buf, n));
    });
  return Value::undefined();
}

}  // namespace hal::text::detail::jinja

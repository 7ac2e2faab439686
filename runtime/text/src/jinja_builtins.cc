// Jinja builtins chat templates use: attributes and items, string and dict methods, tests,
// and the global functions transformers provides (raise_exception, strftime_now) besides
// jinja2's (range, namespace, dict). Anything else is an error naming it. Filters are in
// jinja_filters.cc, Python's string operations in jinja_strings.cc.
#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <cmath>
#include <ctime>

#include "hal/text/utf8.h"
#include "jinja_builtins.h"

namespace hal::text::detail::jinja {

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

namespace {

const char* kTests =
    "boolean, callable, defined, divisibleby, eq, equalto, escaped, even, false, float, ge, gt, "
    "in, integer, iterable, le, lower, lt, mapping, ne, none, number, odd, sameas, sequence, "
    "string, true, undefined, upper, ==, !=, <, <=, >, >=";

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

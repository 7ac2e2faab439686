// jinja_builtins.h (internal): what the builtins of jinja_builtins.cc (attributes,
// methods, tests, globals), jinja_filters.cc (filters) and jinja_strings.cc (Python's
// string operations) share.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "jinja.h"

namespace hal::text::detail::jinja {

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

// A builtin function value.
Value function(std::string name, std::function<Result<Value>(const Args&, const KwArgs&)> call);

// Python's str.isspace() for one character.
bool is_py_space(char32_t c);
// Python's str.upper() / str.lower() / str.capitalize() / str.title().
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);
std::string title_method(std::string_view s);
// jinja2's title filter: each word (split at whitespace, -, (, {, [, <) capitalized.
std::string title_filter(std::string_view s);
// Python's str.strip / lstrip / rstrip (whitespace, or the characters of `chars`).
std::string strip(std::string_view s, const Value* chars, bool left, bool right);
// Python's str.split(sep=None, maxsplit=-1), and rsplit when `from_right`.
Result<Value> split(std::string_view s, const Value* sep, int64_t maxsplit, bool from_right);
// len(): code points of a string, items of a sequence or mapping; 0 otherwise.
int64_t length_of(const Value& v);
// What iterating `v` visits (undefined: nothing); `what` names the caller in errors.
Result<std::vector<Value>> items_of(const Value& v, std::string_view what);

}  // namespace hal::text::detail::jinja

// Jinja filters chat templates use; any other filter is an error naming it.
#include <algorithm>
#include <cmath>

#include "hal/text/utf8.h"
#include "jinja_builtins.h"

namespace hal::text::detail::jinja {

namespace {

const char* kFilters =
    "abs, capitalize, count, d, default, dictsort, e, escape, first, float, indent, int, items, "
    "join, last, length, list, lower, map, max, min, replace, reject, rejectattr, reverse, round, "
    "safe, select, selectattr, sort, string, sum, title, tojson, trim, unique, upper, wordcount";

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

}  // namespace

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

}  // namespace hal::text::detail::jinja

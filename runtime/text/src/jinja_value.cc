// Jinja values: Python's truthiness, str(), repr(), ==, < and json.dumps.
#include <unicode/uchar.h>

#include <charconv>
#include <cmath>
#include <cstdio>

#include "hal/text/utf8.h"
#include "jinja.h"

namespace hal::text::detail::jinja {

namespace {

const char* kind_name(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "Undefined";
    case Value::Kind::kNone:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kTuple:
      return "tuple";
    case Value::Kind::kDict:
      return "dict";
    case Value::Kind::kNamespace:
      return "Namespace";
    case Value::Kind::kFunction:
      return "function";
  }
  return "?";
}

// Python's str.isprintable() for one character (space is printable).
bool printable(char32_t c) {
  if (c == ' ') return true;
  switch (u_charType(UChar32(c))) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SURROGATE:
    case U_PRIVATE_USE_CHAR:
    case U_UNASSIGNED:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
    case U_SPACE_SEPARATOR:
      return false;
    default:
      return true;
  }
}

std::string python_string_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    const char32_t c = decode_char(s.substr(i), &len);
    const std::string_view raw = s.substr(i, len);
    i += len;
    char buf[16];
    if (c == char32_t(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(char(c));
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!printable(c)) {
      if (c < 0x100)
        std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
      else if (c < 0x10000)
        std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
      else
        std::snprintf(buf, sizeof buf, "\\U%08x", unsigned(c));
      out += buf;
    } else {
      out.append(raw);
    }
  }
  out.push_back(quote);
  return out;
}

void json_string(std::string_view s, std::string& out) {
  out.push_back('"');
  for (const char ch : s) {
    const uint8_t c = uint8_t(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", unsigned(c));
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

Status json_value(const Value& v, int indent, int depth, std::string& out) {
  auto newline = [&](int d) {
    if (indent < 0) return;
    out.push_back('\n');
    out.append(size_t(indent) * size_t(d), ' ');
  };
  const char* item_sep = indent < 0 ? ", " : ",";
  switch (v.kind) {
    case Value::Kind::kNone:
      out += "null";
      return ok_status();
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      return ok_status();
    case Value::Kind::kInt:
      out += std::to_string(v.i);
      return ok_status();
    case Value::Kind::kFloat:
      if (std::isnan(v.f))
        out += "NaN";
      else if (std::isinf(v.f))
        out += v.f > 0 ? "Infinity" : "-Infinity";
      else
        out += float_repr(v.f);
      return ok_status();
    case Value::Kind::kString:
      json_string(v.s, out);
      return ok_status();
    case Value::Kind::kList:
    case Value::Kind::kTuple: {
      if (v.list->empty()) {
        out += "[]";
        return ok_status();
      }
      out.push_back('[');
      for (size_t k = 0; k < v.list->size(); ++k) {
        if (k) out += item_sep;
        newline(depth + 1);
        HAL_RETURN_IF_ERROR(json_value((*v.list)[k], indent, depth + 1, out));
      }
      newline(depth);
      out.push_back(']');
      return ok_status();
    }
    case Value::Kind::kDict: {
      if (v.dict->items.empty()) {
        out += "{}";
        return ok_status();
      }
      out.push_back('{');
      for (size_t k = 0; k < v.dict->items.size(); ++k) {
        if (k) out += item_sep;
        newline(depth + 1);
        json_string(v.dict->items[k].first, out);
        out += ": ";
        HAL_RETURN_IF_ERROR(json_value(v.dict->items[k].second, indent, depth + 1, out));
      }
      newline(depth);
      out.push_back('}');
      return ok_status();
    }
    default:
      return invalid_argument(std::string("tojson: object of type ") + kind_name(v) +
                              " is not JSON serializable");
  }
}

}  // namespace

Value Value::undefined(std::string name) {
  Value v;
  v.s = std::move(name);
  return v;
}
Value Value::none() {
  Value v;
  v.kind = Kind::kNone;
  return v;
}
Value Value::boolean(bool x) {
  Value v;
  v.kind = Kind::kBool;
  v.b = x;
  return v;
}
Value Value::integer(int64_t x) {
  Value v;
  v.kind = Kind::kInt;
  v.i = x;
  return v;
}
Value Value::number(double x) {
  Value v;
  v.kind = Kind::kFloat;
  v.f = x;
  return v;
}
Value Value::string(std::string x) {
  Value v;
  v.kind = Kind::kString;
  v.s = std::move(x);
  return v;
}
Value Value::make_list(std::vector<Value> items, bool tuple) {
  Value v;
  v.kind = tuple ? Kind::kTuple : Kind::kList;
  v.list = std::make_shared<const std::vector<Value>>(std::move(items));
  return v;
}
Value Value::make_dict(Dict d) {
  Value v;
  v.kind = Kind::kDict;
  v.dict = std::make_shared<Dict>(std::move(d));
  return v;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : items)
    if (k == key) return &v;
  return nullptr;
}

void Dict::set(std::string key, Value v) {
  for (auto& [k, old] : items)
    if (k == key) {
      old = std::move(v);
      return;
    }
  items.emplace_back(std::move(key), std::move(v));
}

bool Value::truthy() const {
  switch (kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b;
    case Kind::kInt:
      return i != 0;
    case Kind::kFloat:
      return f != 0;
    case Kind::kString:
      return !s.empty();
    case Kind::kList:
    case Kind::kTuple:
      return !list->empty();
    case Kind::kDict:
      return !dict->items.empty();
    case Kind::kNamespace:
    case Kind::kFunction:
      return true;
  }
  return false;
}

std::string float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest round-trip digits, then Python's layout: fixed for 1e-4 <= |v| < 1e16.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  std::string mantissa = sci.substr(0, e);
  const int exponent = std::stoi(sci.substr(e + 1));
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa)
    if (c != '.') digits.push_back(c);
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(size_t(-exponent - 1), '0');
      out += digits;
    } else if (size_t(exponent) + 1 >= digits.size()) {
      out += digits;
      out.append(size_t(exponent) + 1 - digits.size(), '0');
      out += ".0";
    } else {
      out.append(digits, 0, size_t(exponent) + 1);
      out += ".";
      out.append(digits, size_t(exponent) + 1);
    }
    return out;
  }
  out.append(digits, 0, 1);
  if (digits.size() > 1) {
    out += ".";
    out.append(digits, 1);
  }
  char exp[16];
  std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp;
}

std::string Value::repr() const {
  if (kind == Kind::kString) return python_string_repr(s);
  return str();
}

std::string Value::str() const {
  switch (kind) {
    case Kind::kUndefined:
      return "";
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return b ? "True" : "False";
    case Kind::kInt:
      return std::to_string(i);
    case Kind::kFloat:
      return float_repr(f);
    case Kind::kString:
      return s;
    case Kind::kList:
    case Kind::kTuple: {
      std::string out = kind == Kind::kList ? "[" : "(";
      for (size_t k = 0; k < list->size(); ++k) out += (k ? ", " : "") + (*list)[k].repr();
      if (kind == Kind::kTuple && list->size() == 1) out += ",";
      return out + (kind == Kind::kList ? "]" : ")");
    }
    case Kind::kDict:
    case Kind::kNamespace: {
      std::string out = "{";
      for (size_t k = 0; k < dict->items.size(); ++k)
        out += (k ? ", " : "") + python_string_repr(dict->items[k].first) + ": " +
               dict->items[k].second.repr();
      out += "}";
      return kind == Kind::kNamespace ? "<Namespace " + out + ">" : out;
    }
    case Kind::kFunction:
      return "<function " + fn->name + ">";
  }
  return "";
}

bool equal(const Value& a, const Value& b) {
  using K = Value::Kind;
  const bool a_num = a.is_number() || a.kind == K::kBool;
  const bool b_num = b.is_number() || b.kind == K::kBool;
  if (a_num && b_num) {
    if (a.kind != K::kFloat && b.kind != K::kFloat)
      return (a.kind == K::kBool ? int64_t(a.b) : a.i) == (b.kind == K::kBool ? int64_t(b.b) : b.i);
    return a.as_double() == b.as_double();
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::kUndefined:
    case K::kNone:
      return true;
    case K::kString:
      return a.s == b.s;
    case K::kList:
    case K::kTuple:
      if (a.list->size() != b.list->size()) return false;
      for (size_t k = 0; k < a.list->size(); ++k)
        if (!equal((*a.list)[k], (*b.list)[k])) return false;
      return true;
    case K::kDict:
      if (a.dict->items.size() != b.dict->items.size()) return false;
      for (const auto& [key, v] : a.dict->items) {
        const Value* other = b.dict->find(key);
        if (!other || !equal(v, *other)) return false;
      }
      return true;
    case K::kNamespace:
      return a.dict == b.dict;
    case K::kFunction:
      return a.fn == b.fn;
    default:
      return false;
  }
}

Result<bool> less(const Value& a, const Value& b) {
  const bool a_num = a.is_number() || a.kind == Value::Kind::kBool;
  const bool b_num = b.is_number() || b.kind == Value::Kind::kBool;
  if (a_num && b_num) {
    if (a.kind == Value::Kind::kInt && b.kind == Value::Kind::kInt) return a.i < b.i;
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return a.s < b.s;  // UTF-8 order is code point order
  if (a.is_sequence() && a.kind == b.kind) {
    const size_t n = std::min(a.list->size(), b.list->size());
    for (size_t k = 0; k < n; ++k) {
      if (equal((*a.list)[k], (*b.list)[k])) continue;
      return less((*a.list)[k], (*b.list)[k]);
    }
    return a.list->size() < b.list->size();
  }
  return invalid_argument(std::string("'<' not supported between '") + kind_name(a) + "' and '" +
                          kind_name(b) + "'");
}

Result<std::string> to_json(const Value& v, int indent) {
  std::string out;
  HAL_RETURN_IF_ERROR(json_value(v, indent, 0, out));
  return out;
}

std::vector<std::string_view> code_points(std::string_view s) {
  std::vector<std::string_view> out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const CharScan c = scan_char(s.substr(i));
    const size_t len = c.kind == CharScan::kChar ? c.length : 1;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace hal::text::detail::jinja

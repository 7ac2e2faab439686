// The Jinja lexer (jinja_lexer.h).
#include "jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "hal/text/utf8.h"

namespace hal::text::detail::jinja {

std::string error_prefix(std::string_view name, int line) {
  return "chat template '" + std::string(name) + "': line " + std::to_string(line) + ": ";
}

namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Python's unicode-escape decoding of a string literal's body.
std::string unescape(std::string_view body) {
  std::string out;
  for (size_t k = 0; k < body.size(); ++k) {
    if (body[k] != '\\' || k + 1 == body.size()) {
      out.push_back(body[k]);
      continue;
    }
    const char e = body[++k];
    auto hex = [&](size_t digits) -> bool {
      if (k + digits >= body.size()) return false;
      char32_t c = 0;
      for (size_t d = 1; d <= digits; ++d) {
        const char h = body[k + d];
        if (!std::isxdigit(uint8_t(h))) return false;
        c = c * 16 + char32_t(std::isdigit(uint8_t(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
      append_char(c, out);
      k += digits;
      return true;
    };
    switch (e) {
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case '\\':
        out.push_back('\\');
        break;
      case '\'':
        out.push_back('\'');
        break;
      case '"':
        out.push_back('"');
        break;
      case 'a':
        out.push_back('\a');
        break;
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'v':
        out.push_back('\v');
        break;
      case '\n':
        break;  // line continuation
      case 'x':
        if (!hex(2)) out += "\\x";
        break;
      case 'u':
        if (!hex(4)) out += "\\u";
        break;
      case 'U':
        if (!hex(8)) out += "\\U";
        break;
      default:
        if (e >= '0' && e <= '7') {
          char32_t c = char32_t(e - '0');
          for (int d = 0; d < 2 && k + 1 < body.size() && body[k + 1] >= '0' && body[k + 1] <= '7';
               ++d)
            c = c * 8 + char32_t(body[++k] - '0');
          append_char(c, out);
        } else {
          out.push_back('\\');  // unknown escapes stay as written, as in Python
          out.push_back(e);
        }
    }
  }
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view source, std::string_view name) : name_(name) {
    // Newlines are normalized to \n and one trailing newline is dropped
    // (keep_trailing_newline=False), as jinja2 does.
    src_.reserve(source.size());
    for (size_t k = 0; k < source.size(); ++k) {
      if (source[k] == '\r') {
        src_.push_back('\n');
        if (k + 1 < source.size() && source[k + 1] == '\n') ++k;
      } else {
        src_.push_back(source[k]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  Result<std::vector<Token>> run() {
    bool line_starting = true;  // the next text begins a line
    bool strip_next = false;    // a "-" asked to strip the next text's leading whitespace
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      std::string text = src_.substr(pos_, tag - pos_);
      if (strip_next) {
        size_t b = 0;
        while (b < text.size() && is_space(text[b])) ++b;
        text.erase(0, b);
        strip_next = false;
      }
      if (tag == src_.size()) {
        add_text(text);
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      const char sign = tag + 2 < src_.size() ? src_[tag + 2] : 0;
      if (sign == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (kind != '{' && sign != '+') {
        // lstrip_blocks: a block or comment alone on its line takes its indentation away.
        const size_t line_start = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
        if (line_start > 0 || line_starting) {
          bool blank = true;
          for (size_t k = line_start; k < text.size(); ++k)
            blank &= text[k] == ' ' || text[k] == '\t';
          if (blank) text.erase(line_start);
        }
      }
      add_text(text);
      line_ += count_newlines(pos_, tag);
      pos_ = tag + 2 + ((sign == '-' || sign == '+') ? 1 : 0);
      bool strip_after = false;
      if (kind == '#') {
        size_t end = src_.find("#}", pos_);
        if (end == std::string::npos)
          return invalid_argument(error_prefix(name_, line_) + "unterminated comment");
        strip_after = end > pos_ && src_[end - 1] == '-';
        line_ += count_newlines(pos_, end);
        pos_ = end + 2;
      } else {
        // {% raw %} ... {% endraw %}: the text between is literal.
        if (kind == '%' && raw_block_at(pos_)) {
          HAL_RETURN_IF_ERROR(lex_raw(strip_after));
        } else {
          tokens_.push_back({kind == '{' ? Token::kVarBegin : Token::kBlockBegin, "", line_});
          HAL_RETURN_IF_ERROR(lex_expression(kind, strip_after));
        }
      }
      line_starting = false;
      if (strip_after) {
        strip_next = true;
      } else if (kind != '{' && pos_ < src_.size() && src_[pos_] == '\n') {
        ++pos_;  // trim_blocks: the newline after a block or comment goes
        ++line_;
        line_starting = true;
      }
    }
    tokens_.push_back({Token::kEof, "", line_});
    return std::move(tokens_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t k = from; k + 1 < src_.size(); ++k)
      if (src_[k] == '{' && (src_[k + 1] == '{' || src_[k + 1] == '%' || src_[k + 1] == '#'))
        return k;
    return src_.size();
  }
  int count_newlines(size_t a, size_t b) const {
    int n = 0;
    for (size_t k = a; k < b && k < src_.size(); ++k) n += src_[k] == '\n';
    return n;
  }
  void add_text(const std::string& text) {
    if (!text.empty()) tokens_.push_back({Token::kText, text, line_});
  }
  bool raw_block_at(size_t p) const {
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && is_space(src_[p])) ++p;
    return src_.compare(p, 2, "%}") == 0 || src_.compare(p, 3, "-%}") == 0;
  }
  Status lex_raw(bool& strip_after) {
    size_t p = src_.find("%}", pos_) + 2;
    // The closing {% endraw %}.
    for (size_t k = p; (k = src_.find("{%", k)) != std::string::npos; ++k) {
      size_t q = k + 2;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) ++q;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && is_space(src_[q])) ++q;
      if (q < src_.size() && src_[q] == '-') {
        strip_after = true;
        ++q;
      }
      if (src_.compare(q, 2, "%}") != 0) continue;
      add_text(src_.substr(p, k - p));
      line_ += count_newlines(pos_, q + 2);
      pos_ = q + 2;
      return ok_status();
    }
    return invalid_argument(error_prefix(name_, line_) + "{% raw %} without {% endraw %}");
  }

  Status lex_expression(char kind, bool& strip_after) {
    int depth = 0;
    const char* end_text = kind == '{' ? "}}" : "%}";
    while (true) {
      while (pos_ < src_.size() && is_space(src_[pos_])) {
        if (src_[pos_] == '\n') ++line_;
        ++pos_;
      }
      if (pos_ >= src_.size())
        return invalid_argument(error_prefix(name_, line_) + "unterminated " +
                                (kind == '{' ? "{{ ... }}" : "{% ... %}"));
      if (depth == 0) {
        if (src_.compare(pos_, 2, end_text) == 0) {
          pos_ += 2;
          break;
        }
        if (src_[pos_] == '-' && src_.compare(pos_ + 1, 2, end_text) == 0) {
          pos_ += 3;
          strip_after = true;
          break;
        }
      }
      const char c = src_[pos_];
      if (std::isalpha(uint8_t(c)) || c == '_') {
        size_t e = pos_;
        while (e < src_.size() && (std::isalnum(uint8_t(src_[e])) || src_[e] == '_')) ++e;
        tokens_.push_back({Token::kName, src_.substr(pos_, e - pos_), line_});
        pos_ = e;
      } else if (std::isdigit(uint8_t(c))) {
        size_t e = pos_;
        bool is_float = false;
        while (e < src_.size() && (std::isdigit(uint8_t(src_[e])) || src_[e] == '_')) ++e;
        if (e + 1 < src_.size() && src_[e] == '.' && std::isdigit(uint8_t(src_[e + 1]))) {
          is_float = true;
          ++e;
          while (e < src_.size() && (std::isdigit(uint8_t(src_[e])) || src_[e] == '_')) ++e;
        }
        if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
          size_t x = e + 1;
          if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
          if (x < src_.size() && std::isdigit(uint8_t(src_[x]))) {
            is_float = true;
            e = x;
            while (e < src_.size() && std::isdigit(uint8_t(src_[e]))) ++e;
          }
        }
        std::string digits;
        for (size_t k = pos_; k < e; ++k)
          if (src_[k] != '_') digits.push_back(src_[k]);
        Token t{is_float ? Token::kFloat : Token::kInt, digits, line_};
        if (is_float) {
          t.f = std::strtod(digits.c_str(), nullptr);
        } else {
          errno = 0;
          t.i = std::strtoll(digits.c_str(), nullptr, 10);
          if (errno == ERANGE)
            return invalid_argument(error_prefix(name_, line_) + "integer " + digits +
                                    " is too large");
        }
        tokens_.push_back(std::move(t));
        pos_ = e;
      } else if (c == '\'' || c == '"') {
        size_t e = pos_ + 1;
        while (e < src_.size() && src_[e] != c) {
          if (src_[e] == '\\') ++e;
          ++e;
        }
        if (e >= src_.size())
          return invalid_argument(error_prefix(name_, line_) + "unterminated string literal");
        const std::string body = src_.substr(pos_ + 1, e - pos_ - 1);
        tokens_.push_back({Token::kString, unescape(body), line_});
        line_ += count_newlines(pos_, e);
        pos_ = e + 1;
      } else {
        static const char* ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*",
                                    "/",  "%",  "~",  "<",  ">",  "=",  "(", ")", "[",
                                    "]",  "{",  "}",  ",",  ".",  ":",  "|"};
        const char* op = nullptr;
        for (const char* o : ops)
          if (src_.compare(pos_, std::strlen(o), o) == 0) {
            op = o;
            break;
          }
        if (!op)
          return invalid_argument(error_prefix(name_, line_) + "unexpected character '" +
                                  std::string(1, c) + "'");
        if (op[0] == '(' || op[0] == '[' || op[0] == '{') ++depth;
        if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && depth > 0) --depth;
        tokens_.push_back({Token::kOp, op, line_});
        pos_ += std::strlen(op);
      }
    }
    tokens_.push_back({kind == '{' ? Token::kVarEnd : Token::kBlockEnd, "", line_});
    return ok_status();
  }

  std::string src_;
  std::string name_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

}  // namespace

Result<std::vector<Token>> lex(std::string_view source, std::string_view name) {
  Lexer lexer(source, name);
  return lexer.run();
}

}  // namespace hal::text::detail::jinja

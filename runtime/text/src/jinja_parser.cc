// The Jinja lexer and parser: template text -> syntax tree (jinja.h), with the
// whitespace rules transformers renders chat templates with (trim_blocks,
// lstrip_blocks, no trailing newline kept). Precedence and grammar follow jinja2's parser.
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "hal/text/utf8.h"
#include "jinja.h"

namespace hal::text::detail::jinja {

namespace {

struct Token {
  enum Type {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEof
  } type;
  std::string text;
  int line = 0;
  int64_t i = 0;
  double f = 0;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string error_prefix(std::string_view name, int line) {
  return "chat template '" + std::string(name) + "': line " + std::to_string(line) + ": ";
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

using ExprPtr = std::unique_ptr<Expr>;
using Body = std::vector<std::unique_ptr<Stmt>>;

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::string_view name) : t_(std::move(tokens)), name_(name) {}

  Result<Body> parse_template() {
    std::string end;
    HAL_ASSIGN_OR_RETURN(Body body, parse_body({}, &end));
    return body;
  }

 private:
  const Token& cur() const { return t_[p_]; }
  bool is_op(const char* op) const { return cur().type == Token::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Token::kName && cur().text == n; }
  Status fail(const std::string& what) const {
    return invalid_argument(error_prefix(name_, cur().line) + what);
  }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case Token::kText:
        return "text";
      case Token::kVarBegin:
        return "'{{'";
      case Token::kVarEnd:
        return "'}}'";
      case Token::kBlockBegin:
        return "'{%'";
      case Token::kBlockEnd:
        return "'%}'";
      case Token::kEof:
        return "the end of the template";
      default:
        return "'" + t.text + "'";
    }
  }
  Status expect_op(const char* op) {
    if (!is_op(op)) return fail(std::string("expected '") + op + "', found " + describe(cur()));
    ++p_;
    return ok_status();
  }
  Status expect(Token::Type type, const char* what) {
    if (cur().type != type)
      return fail(std::string("expected ") + what + ", found " + describe(cur()));
    ++p_;
    return ok_status();
  }
  Result<std::string> expect_name() {
    if (cur().type != Token::kName) return fail("expected a name, found " + describe(cur()));
    return t_[p_++].text;
  }
  ExprPtr node(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Statements until a block whose keyword is in `ends` (returned in *end).
  Result<Body> parse_body(const std::vector<std::string>& ends, std::string* end) {
    Body body;
    while (true) {
      const Token& tok = cur();
      if (tok.type == Token::kEof) {
        if (!ends.empty()) {
          std::string list;
          for (const std::string& e : ends) list += (list.empty() ? "" : " or ") + e;
          return fail("missing {% " + list + " %}");
        }
        *end = "";
        return body;
      }
      if (tok.type == Token::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = tok.line;
        s->text = tok.text;
        body.push_back(std::move(s));
        ++p_;
        continue;
      }
      if (tok.type == Token::kVarBegin) {
        ++p_;
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->line = tok.line;
        HAL_ASSIGN_OR_RETURN(s->expr, parse_tuple());
        HAL_RETURN_IF_ERROR(expect(Token::kVarEnd, "'}}'"));
        body.push_back(std::move(s));
        continue;
      }
      if (tok.type != Token::kBlockBegin) return fail("unexpected " + describe(tok));
      const Token& keyword = t_[p_ + 1];
      if (keyword.type != Token::kName) {
        ++p_;
        return fail("expected a statement name, found " + describe(keyword));
      }
      for (const std::string& e : ends)
        if (keyword.text == e) {
          p_ += 2;
          *end = e;
          return body;
        }
      p_ += 2;
      HAL_ASSIGN_OR_RETURN(auto stmt, parse_statement(keyword));
      if (stmt) body.push_back(std::move(stmt));
    }
  }

  Result<std::unique_ptr<Stmt>> parse_statement(const Token& keyword) {
    NestingGuard guard(nesting_);
    if (nesting_ > kMaxNesting) return fail("statements nested too deeply");
    auto s = std::make_unique<Stmt>();
    s->line = keyword.line;
    const std::string& k = keyword.text;
    std::string end;
    if (k == "if") {
      s->kind = Stmt::Kind::kIf;
      while (true) {
        HAL_ASSIGN_OR_RETURN(auto cond, parse_expression());
        HAL_RETURN_IF_ERROR(expect(Token::kBlockEnd, "'%}'"));
        s->conditions.push_back(std::move(cond));
        HAL_ASSIGN_OR_RETURN(Body body, parse_body({"elif", "else", "endif"}, &end));
        s->bodies.push_back(std::move(body));
        if (end == "elif") continue;
        if (end == "else") {
          HAL_RETURN_IF_ERROR(expect(Token::kBlockEnd, "'%}'"));
          HAL_ASSIGN_OR_RETURN(Body else_body, parse_body({"endif"}, &end));
          s->bodies.push_back(std::move(else_body));
        }
        break;
      }
    } else if (k == "for") {
      s->kind = Stmt::Kind::kFor;
      do {
        HAL_ASSIGN_OR_RETURN(std::string target, expect_name());
        s->targets.push_back(std::move(target));
      } while (is_op(",") && (++p_, true));
      if (!is_name("in")) return fail("expected 'in' in the for statement");
      ++p_;
      HAL_ASSIGN_OR_RETURN(s->expr, parse_expression(/*with_condition=*/false));
      if (is_name("if")) {
        ++p_;
        HAL_ASSIGN_OR_RETURN(s->loop_filter, parse_expression(false));
      }
      if (is_name("recursive")) return fail("unsupported: recursive for loops");
      HAL_RETURN_IF_ERROR(expect(Token::kBlockEnd, "'%}'"));
      HAL_ASSIGN_OR_RETURN(Body body, parse_body({"else", "endfor"}, &end));
      s->bodies.push_back(std::move(body));
      if (end == "else") {
        HAL_RETURN_IF_ERROR(expect(Token::kBlockEnd, "'%}'"));
        HAL_ASSIGN_OR_RETURN(Body else_body, parse_body({"endfor"}, &end));
        s->bodies.push_back(std::move(else_body));
      }
    } else if (k == "set") {
      s->kind = Stmt::Kind::kSet;
      HAL_ASSIGN_OR_RETURN(std::string first, expect_name());
      if (is_op(".")) {
        ++p_;
        s->target_object = std::move(first);
        HAL_ASSIGN_OR_RETURN(first, expect_name());
        s->targets.push_back(std::move(first));
      } else {
        s->targets.push_back(std::move(first));
        while (is_op(",")) {
          ++p_;
          HAL_ASSIGN_OR_RETURN(std::string next, expect_name());
          s->targets.push_back(std::move(next));
        }
      }
      if (cur().type == Token::kBlockEnd && s->target_object.empty() && s->targets.size() == 1) {
        ++p_;
        s->kind = Stmt::Kind::kSetBlock;
        HAL_ASSIGN_OR_RETURN(Body body, parse_body({"endset"}, &end));
        s->bodies.push_back(std::move(body));
      } else {
        HAL_RETURN_IF_ERROR(expect_op("="));
        HAL_ASSIGN_OR_RETURN(s->expr, parse_tuple());
      }
    } else if (k == "break" || k == "continue") {
      s->kind = k == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
    } else if (k == "generation") {
      // transformers' {% generation %} marks assistant text; it renders as is.
      s->kind = Stmt::Kind::kBlock;
      HAL_RETURN_IF_ERROR(expect(Token::kBlockEnd, "'%}'"));
      HAL_ASSIGN_OR_RETURN(Body body, parse_body({"endgeneration"}, &end));
      s->bodies.push_back(std::move(body));
    } else if (k == "elif" || k == "else" || k.rfind("end", 0) == 0) {
      return fail("unexpected {% " + k + " %}");
    } else {
      return fail("unsupported statement '" + k + "'");
    }
    HAL_RETURN_IF_ERROR(expect(Token::kBlockEnd, "'%}'"));
    return s;
  }

  // expression (, expression)* : a tuple when there is a comma.
  Result<ExprPtr> parse_tuple() {
    const int line = cur().line;
    HAL_ASSIGN_OR_RETURN(ExprPtr first, parse_expression());
    if (!is_op(",")) return first;
    auto t = node(Expr::Kind::kList, line);
    t->is_tuple = true;
    t->children.push_back(std::move(first));
    while (is_op(",")) {
      ++p_;
      if (cur().type == Token::kVarEnd || cur().type == Token::kBlockEnd || is_op(")")) break;
      HAL_ASSIGN_OR_RETURN(ExprPtr next, parse_expression());
      t->children.push_back(std::move(next));
    }
    return t;
  }

  Result<ExprPtr> parse_expression(bool with_condition = true) {
    if (!with_condition) return parse_or();
    const int line = cur().line;
    HAL_ASSIGN_OR_RETURN(ExprPtr expr, parse_or());
    while (is_name("if")) {
      ++p_;
      auto c = node(Expr::Kind::kCondition, line);
      HAL_ASSIGN_OR_RETURN(ExprPtr cond, parse_or());
      c->children.push_back(std::move(cond));
      c->children.push_back(std::move(expr));
      if (is_name("else")) {
        ++p_;
        HAL_ASSIGN_OR_RETURN(ExprPtr other, parse_expression());
        c->children.push_back(std::move(other));
      } else {
        c->children.push_back(nullptr);
      }
      expr = std::move(c);
    }
    return expr;
  }

  ExprPtr binary(std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = node(Expr::Kind::kBinary, line);
    e->name = std::move(op);
    e->children.push_back(std::move(a));
    e->children.push_back(std::move(b));
    return e;
  }

  Result<ExprPtr> parse_or() {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_and());
    while (is_name("or")) {
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_and());
      left = binary("or", std::move(left), std::move(right), line);
    }
    return left;
  }
  Result<ExprPtr> parse_and() {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_not());
    while (is_name("and")) {
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_not());
      left = binary("and", std::move(left), std::move(right), line);
    }
    return left;
  }
  Result<ExprPtr> parse_not() {
    if (is_name("not")) {
      auto e = node(Expr::Kind::kUnary, cur().line);
      ++p_;
      e->name = "not";
      HAL_ASSIGN_OR_RETURN(ExprPtr operand, parse_not());
      e->children.push_back(std::move(operand));
      return e;
    }
    return parse_compare();
  }
  Result<ExprPtr> parse_compare() {
    const int line = cur().line;
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_math1());
    ExprPtr chain;  // a < b < c is (a < b) and (b < c)
    const Expr* last_operand = nullptr;
    while (true) {
      std::string op;
      if (cur().type == Token::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        op = cur().text;
        ++p_;
      } else if (is_name("in")) {
        op = "in";
        ++p_;
      } else if (is_name("not") && t_[p_ + 1].type == Token::kName && t_[p_ + 1].text == "in") {
        op = "not in";
        p_ += 2;
      } else {
        break;
      }
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_math1());
      const Expr* right_ptr = right.get();
      if (chain) {
        // The middle operand is evaluated again: expressions have no side effects here.
        auto copy = clone(*last_operand);
        chain = binary("and", std::move(chain), binary(op, std::move(copy), std::move(right), line),
                       line);
      } else {
        chain = binary(op, std::move(left), std::move(right), line);
      }
      last_operand = right_ptr;
    }
    return chain ? std::move(chain) : std::move(left);
  }
  // Copies of operands are only taken of comparison operands (chained comparisons).
  ExprPtr clone(const Expr& e) {
    auto c = std::make_unique<Expr>();
    c->kind = e.kind;
    c->line = e.line;
    c->value = e.value;
    c->name = e.name;
    c->negated = e.negated;
    c->is_tuple = e.is_tuple;
    for (const auto& ch : e.children) c->children.push_back(ch ? clone(*ch) : nullptr);
    for (const auto& [k, v] : e.kwargs) c->kwargs.emplace_back(k, clone(*v));
    return c;
  }
  Result<ExprPtr> parse_math1() {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_concat());
    while (is_op("+") || is_op("-")) {
      const std::string op = cur().text;
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_concat());
      left = binary(op, std::move(left), std::move(right), line);
    }
    return left;
  }
  Result<ExprPtr> parse_concat() {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_math2());
    while (is_op("~")) {
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_math2());
      left = binary("~", std::move(left), std::move(right), line);
    }
    return left;
  }
  Result<ExprPtr> parse_math2() {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_pow());
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const std::string op = cur().text;
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_pow());
      left = binary(op, std::move(left), std::move(right), line);
    }
    return left;
  }
  Result<ExprPtr> parse_pow() {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, parse_unary());
    while (is_op("**")) {
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, parse_unary());
      left = binary("**", std::move(left), std::move(right), line);
    }
    return left;
  }
  // Nesting deeper than this is refused rather than risking the stack: templates are
  // data from a model repository.
  static constexpr int kMaxNesting = 200;
  struct NestingGuard {
    int& depth;
    explicit NestingGuard(int& d) : depth(++d) {}
    ~NestingGuard() { --depth; }
  };

  Result<ExprPtr> parse_unary(bool with_filter = true) {
    NestingGuard guard(nesting_);
    if (nesting_ > kMaxNesting) return fail("expression nested too deeply");
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      e = node(Expr::Kind::kUnary, cur().line);
      e->name = cur().text;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr operand, parse_unary(false));
      e->children.push_back(std::move(operand));
    } else {
      HAL_ASSIGN_OR_RETURN(e, parse_primary());
    }
    HAL_ASSIGN_OR_RETURN(e, parse_postfix(std::move(e)));
    if (with_filter) {
      HAL_ASSIGN_OR_RETURN(e, parse_filters(std::move(e)));
    }
    return e;
  }

  Result<ExprPtr> parse_primary() {
    const Token& tok = cur();
    const int line = tok.line;
    if (tok.type == Token::kName) {
      ++p_;
      auto e = node(Expr::Kind::kLiteral, line);
      if (tok.text == "true" || tok.text == "True")
        e->value = Value::boolean(true);
      else if (tok.text == "false" || tok.text == "False")
        e->value = Value::boolean(false);
      else if (tok.text == "none" || tok.text == "None")
        e->value = Value::none();
      else {
        e->kind = Expr::Kind::kName;
        e->name = tok.text;
      }
      return e;
    }
    if (tok.type == Token::kString) {
      std::string s;
      while (cur().type == Token::kString) s += t_[p_++].text;  // adjacent literals join
      auto e = node(Expr::Kind::kLiteral, line);
      e->value = Value::string(std::move(s));
      return e;
    }
    if (tok.type == Token::kInt || tok.type == Token::kFloat) {
      ++p_;
      auto e = node(Expr::Kind::kLiteral, line);
      e->value = tok.type == Token::kInt ? Value::integer(tok.i) : Value::number(tok.f);
      return e;
    }
    if (is_op("(")) {
      ++p_;
      if (is_op(")")) {
        ++p_;
        auto e = node(Expr::Kind::kList, line);
        e->is_tuple = true;
        return e;
      }
      HAL_ASSIGN_OR_RETURN(ExprPtr inner, parse_tuple());
      HAL_RETURN_IF_ERROR(expect_op(")"));
      return inner;
    }
    if (is_op("[")) {
      ++p_;
      auto e = node(Expr::Kind::kList, line);
      while (!is_op("]")) {
        HAL_ASSIGN_OR_RETURN(ExprPtr item, parse_expression());
        e->children.push_back(std::move(item));
        if (!is_op(",")) break;
        ++p_;
      }
      HAL_RETURN_IF_ERROR(expect_op("]"));
      return e;
    }
    if (is_op("{")) {
      ++p_;
      auto e = node(Expr::Kind::kDict, line);
      while (!is_op("}")) {
        HAL_ASSIGN_OR_RETURN(ExprPtr key, parse_expression());
        HAL_RETURN_IF_ERROR(expect_op(":"));
        HAL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression());
        e->children.push_back(std::move(key));
        e->children.push_back(std::move(value));
        if (!is_op(",")) break;
        ++p_;
      }
      HAL_RETURN_IF_ERROR(expect_op("}"));
      return e;
    }
    return fail("unexpected " + describe(tok) + " in an expression");
  }

  Status parse_call_args(Expr& e) {
    HAL_RETURN_IF_ERROR(expect_op("("));
    while (!is_op(")")) {
      if (is_op("*") || is_op("**")) return fail("unsupported: *args / **kwargs in calls");
      if (cur().type == Token::kName && t_[p_ + 1].type == Token::kOp && t_[p_ + 1].text == "=") {
        std::string key = t_[p_].text;
        p_ += 2;
        HAL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression());
        e.kwargs.emplace_back(std::move(key), std::move(value));
      } else {
        if (!e.kwargs.empty()) return fail("a positional argument follows keyword arguments");
        HAL_ASSIGN_OR_RETURN(ExprPtr value, parse_expression());
        e.children.push_back(std::move(value));
      }
      if (!is_op(",")) break;
      ++p_;
    }
    return expect_op(")");
  }

  Result<ExprPtr> parse_postfix(ExprPtr e) {
    while (true) {
      const int line = cur().line;
      if (is_op(".")) {
        ++p_;
        auto a = node(Expr::Kind::kAttr, line);
        if (cur().type == Token::kName) {
          a->name = t_[p_++].text;
        } else if (cur().type == Token::kInt) {
          a->kind = Expr::Kind::kItem;  // x.0 is x[0]
          auto index = node(Expr::Kind::kLiteral, line);
          index->value = Value::integer(t_[p_++].i);
          a->children.push_back(std::move(e));
          a->children.push_back(std::move(index));
          e = std::move(a);
          continue;
        } else {
          return fail("expected an attribute name after '.'");
        }
        a->children.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        ++p_;
        ExprPtr parts[3];
        bool slice = false;
        for (int k = 0; k < 3; ++k) {
          if (!is_op(":") && !is_op("]")) {
            HAL_ASSIGN_OR_RETURN(parts[k], parse_expression());
          }
          if (k < 2 && is_op(":")) {
            slice = true;
            ++p_;
            continue;
          }
          break;
        }
        HAL_RETURN_IF_ERROR(expect_op("]"));
        auto s = node(slice ? Expr::Kind::kSlice : Expr::Kind::kItem, line);
        s->children.push_back(std::move(e));
        if (!slice && !parts[0]) return fail("empty subscript []");
        s->children.push_back(std::move(parts[0]));
        if (slice) {
          s->children.push_back(std::move(parts[1]));
          s->children.push_back(std::move(parts[2]));
        }
        e = std::move(s);
      } else if (is_op("(")) {
        auto c = node(Expr::Kind::kCall, line);
        c->children.push_back(std::move(e));
        HAL_RETURN_IF_ERROR(parse_call_args(*c));
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  Result<ExprPtr> parse_filters(ExprPtr e) {
    while (true) {
      const int line = cur().line;
      if (is_op("|")) {
        ++p_;
        auto f = node(Expr::Kind::kFilter, line);
        HAL_ASSIGN_OR_RETURN(f->name, expect_name());
        f->children.push_back(std::move(e));
        if (is_op("(")) HAL_RETURN_IF_ERROR(parse_call_args(*f));
        e = std::move(f);
      } else if (is_name("is")) {
        ++p_;
        auto t = node(Expr::Kind::kTest, line);
        if (is_name("not")) {
          t->negated = true;
          ++p_;
        }
        HAL_ASSIGN_OR_RETURN(t->name, expect_name());
        t->children.push_back(std::move(e));
        if (is_op("(")) {
          HAL_RETURN_IF_ERROR(parse_call_args(*t));
        } else if ((cur().type == Token::kName || cur().type == Token::kString ||
                    cur().type == Token::kInt || cur().type == Token::kFloat || is_op("[") ||
                    is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") &&
                   !is_name("not") && !is_name("in")) {
          // `x is divisibleby 3`: one argument without parentheses.
          HAL_ASSIGN_OR_RETURN(ExprPtr arg, parse_primary());
          HAL_ASSIGN_OR_RETURN(arg, parse_postfix(std::move(arg)));
          t->children.push_back(std::move(arg));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        auto c = node(Expr::Kind::kCall, line);
        c->children.push_back(std::move(e));
        HAL_RETURN_IF_ERROR(parse_call_args(*c));
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  std::vector<Token> t_;
  size_t p_ = 0;
  std::string name_;
  int nesting_ = 0;
};

}  // namespace

Result<std::shared_ptr<const Template>> parse(std::string_view source, std::string_view name) {
  if (!is_valid_utf8(source))
    return invalid_argument("chat template '" + std::string(name) + "' is not valid UTF-8");
  Lexer lexer(source, name);
  HAL_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.run());
  Parser parser(std::move(tokens), name);
  auto t = std::make_shared<Template>();
  t->name = std::string(name);
  HAL_ASSIGN_OR_RETURN(t->body, parser.parse_template());
  return std::shared_ptr<const Template>(std::move(t));
}

}  // namespace hal::text::detail::jinja

// The Jinja parser: tokens (jinja_lexer.h) -> syntax tree (jinja.h). Precedence and
// grammar follow jinja2's parser.
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "hal/text/utf8.h"
#include "jinja.h"
#include "jinja_lexer.h"

namespace hal::text::detail::jinja {

namespace {

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

  // One left-associative level: operands from `next`, joined by any of `ops` (operator
  // tokens, or the keywords "and" / "or").
  Result<ExprPtr> left_assoc(std::initializer_list<const char*> ops,
                             Result<ExprPtr> (Parser::*next)()) {
    HAL_ASSIGN_OR_RETURN(ExprPtr left, (this->*next)());
    while (true) {
      const char* op = nullptr;
      for (const char* o : ops)
        if (is_op(o) || is_name(o)) op = o;
      if (!op) return left;
      const int line = cur().line;
      ++p_;
      HAL_ASSIGN_OR_RETURN(ExprPtr right, (this->*next)());
      left = binary(op, std::move(left), std::move(right), line);
    }
  }

  Result<ExprPtr> parse_or() { return left_assoc({"or"}, &Parser::parse_and); }
  Result<ExprPtr> parse_and() { return left_assoc({"and"}, &Parser::parse_not); }
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
  Result<ExprPtr> parse_math1() { return left_assoc({"+", "-"}, &Parser::parse_concat); }
  Result<ExprPtr> parse_concat() { return left_assoc({"~"}, &Parser::parse_math2); }
  Result<ExprPtr> parse_math2() { return left_assoc({"*", "/", "//", "%"}, &Parser::parse_pow); }
  Result<ExprPtr> parse_pow() { return left_assoc({"**"}, &Parser::parse_filtered_unary); }
  Result<ExprPtr> parse_filtered_unary() { return parse_unary(true); }

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
  HAL_ASSIGN_OR_RETURN(std::vector<Token> tokens, lex(source, name));
  Parser parser(std::move(tokens), name);
  auto t = std::make_shared<Template>();
  t->name = std::string(name);
  HAL_ASSIGN_OR_RETURN(t->body, parser.parse_template());
  return std::shared_ptr<const Template>(std::move(t));
}

}  // namespace hal::text::detail::jinja

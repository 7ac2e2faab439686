// Rendering a parsed template: statements, scopes and expressions with Python semantics.
// Filters, tests, methods and global functions are in jinja_builtins.cc.
#include <algorithm>
#include <cmath>

#include "jinja.h"

namespace hal::text::detail::jinja {

namespace {

// Loops deeper than this or templates producing more than this are refused: a template
// is data from a model repository, and must not hang or exhaust memory.
constexpr size_t kMaxOutputBytes = 64 << 20;
constexpr int kMaxDepth = 256;
// Work budget of one render, in expression evaluations and loop iterations plus elements
// of the sequences built: a chat template over a thousand messages stays well below it;
// nested loops over large ranges do not (and must fail in well under a second).
constexpr int64_t kMaxWork = 200'000;

class Renderer {
 public:
  Renderer(const Template& t, const Value& globals) : t_(t), globals_(globals) {}

  Result<std::string> run() {
    frames_.emplace_back();
    Flow flow = Flow::kNormal;
    HAL_RETURN_IF_ERROR(exec(t_.body, flow));
    return std::move(out_);
  }

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  using Frame = std::vector<std::pair<std::string, Value>>;

  Status fail(int line, const std::string& what) const {
    return invalid_argument("chat template '" + t_.name + "': line " + std::to_string(line) + ": " +
                            what);
  }
  Status located(int line, const Status& s) const {
    if (s.message().rfind("chat template '", 0) == 0) return s;
    return fail(line, s.message());
  }

  Value lookup(const std::string& name) const {
    for (auto f = frames_.rbegin(); f != frames_.rend(); ++f)
      for (auto v = f->rbegin(); v != f->rend(); ++v)
        if (v->first == name) return v->second;
    if (globals_.kind == Value::Kind::kDict)
      if (const Value* v = globals_.dict->find(name)) return *v;
    Value fn = global_function(name);
    if (!fn.is_undefined()) return fn;
    return Value::undefined("'" + name + "' is undefined");
  }
  void assign(const std::string& name, Value v) {
    Frame& f = frames_.back();
    for (auto& [k, old] : f)
      if (k == name) {
        old = std::move(v);
        return;
      }
    f.emplace_back(name, std::move(v));
  }

  Status exec(const std::vector<std::unique_ptr<Stmt>>& body, Flow& flow) {
    for (const auto& s : body) {
      HAL_RETURN_IF_ERROR(exec(*s, flow));
      if (flow != Flow::kNormal) return ok_status();
      if (out_.size() > kMaxOutputBytes)
        return fail(s->line, "output exceeds " + std::to_string(kMaxOutputBytes) + " bytes");
    }
    return ok_status();
  }

  Status exec(const Stmt& s, Flow& flow) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        out_ += s.text;
        return ok_status();
      case Stmt::Kind::kOutput: {
        HAL_ASSIGN_OR_RETURN(const Value v, eval(*s.expr));
        out_ += v.str();
        return ok_status();
      }
      case Stmt::Kind::kIf:
        for (size_t k = 0; k < s.bodies.size(); ++k) {
          if (k < s.conditions.size()) {
            HAL_ASSIGN_OR_RETURN(const Value c, eval(*s.conditions[k]));
            if (!c.truthy()) continue;
          }
          return exec(s.bodies[k], flow);
        }
        return ok_status();
      case Stmt::Kind::kFor:
        return exec_for(s, flow);
      case Stmt::Kind::kSet: {
        HAL_ASSIGN_OR_RETURN(const Value v, eval(*s.expr));
        if (!s.target_object.empty()) {
          const Value ns = lookup(s.target_object);
          if (ns.kind != Value::Kind::kNamespace)
            return fail(s.line, "cannot assign attribute '" + s.targets[0] + "' of '" +
                                    s.target_object + "': only a namespace() can be assigned to");
          ns.dict->set(s.targets[0], v);
          return ok_status();
        }
        if (s.targets.size() == 1) {
          assign(s.targets[0], v);
          return ok_status();
        }
        if (!v.is_sequence() || v.list->size() != s.targets.size())
          return fail(s.line, "cannot unpack " +
                                  std::to_string(v.is_sequence() ? v.list->size() : 1) +
                                  " values into " + std::to_string(s.targets.size()) + " names");
        for (size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], (*v.list)[k]);
        return ok_status();
      }
      case Stmt::Kind::kSetBlock: {
        std::string saved = std::move(out_);
        out_.clear();
        Flow inner = Flow::kNormal;
        const Status st = exec(s.bodies[0], inner);
        std::string captured = std::move(out_);
        out_ = std::move(saved);
        HAL_RETURN_IF_ERROR(st);
        assign(s.targets[0], Value::string(std::move(captured)));
        return ok_status();
      }
      case Stmt::Kind::kBreak:
      case Stmt::Kind::kContinue:
        if (loop_depth_ == 0) return fail(s.line, "{% break %} / {% continue %} outside a loop");
        flow = s.kind == Stmt::Kind::kBreak ? Flow::kBreak : Flow::kContinue;
        return ok_status();
      case Stmt::Kind::kBlock:
        return exec(s.bodies[0], flow);
    }
    return ok_status();
  }

  // The items a for loop visits (shared with the value when it is a list: no copy).
  Result<std::shared_ptr<const std::vector<Value>>> iterate(const Value& v, int line) const {
    switch (v.kind) {
      case Value::Kind::kUndefined:
        return std::make_shared<const std::vector<Value>>();
      case Value::Kind::kList:
      case Value::Kind::kTuple:
        return v.list;
      case Value::Kind::kDict: {
        std::vector<Value> keys;
        for (const auto& [k, _] : v.dict->items) keys.push_back(Value::string(k));
        return std::make_shared<const std::vector<Value>>(std::move(keys));
      }
      case Value::Kind::kString: {
        std::vector<Value> chars;
        for (std::string_view c : code_points(v.s)) chars.push_back(Value::string(std::string(c)));
        return std::make_shared<const std::vector<Value>>(std::move(chars));
      }
      default:
        return fail(line, "'" + v.str() + "' is not iterable");
    }
  }

  Status exec_for(const Stmt& s, Flow& flow) {
    if (++depth_ > kMaxDepth) return fail(s.line, "loops nested too deeply");
    HAL_ASSIGN_OR_RETURN(const Value seq, eval(*s.expr));
    HAL_ASSIGN_OR_RETURN(std::shared_ptr<const std::vector<Value>> all, iterate(seq, s.line));
    auto bind = [&](const Value& item) -> Status {
      if (s.targets.size() == 1) {
        assign(s.targets[0], item);
        return ok_status();
      }
      if (!item.is_sequence() || item.list->size() != s.targets.size())
        return fail(s.line, "cannot unpack a loop item into " + std::to_string(s.targets.size()) +
                                " names");
      for (size_t k = 0; k < s.targets.size(); ++k) assign(s.targets[k], (*item.list)[k]);
      return ok_status();
    };
    if (s.loop_filter) {
      std::vector<Value> kept;
      for (const Value& item : *all) {
        frames_.emplace_back();
        Status st = bind(item);
        Result<Value> keep = st.ok() ? eval(*s.loop_filter) : Result<Value>(st);
        frames_.pop_back();
        if (!keep.ok()) return keep.status();
        if (keep->truthy()) kept.push_back(item);
      }
      all = std::make_shared<const std::vector<Value>>(std::move(kept));
    }
    const std::vector<Value>& items = *all;
    if (items.empty()) {
      --depth_;
      if (s.bodies.size() > 1) return exec(s.bodies[1], flow);
      return ok_status();
    }
    ++loop_depth_;
    const int64_t n = int64_t(items.size());
    // loop.cycle(a, b, ...): one function per loop, reading the current iteration.
    auto position = std::make_shared<int64_t>(0);
    auto fn = std::make_shared<Function>();
    fn->name = "loop.cycle";
    fn->call = [position](const Args& args, const KwArgs&) -> Result<Value> {
      if (args.empty()) return invalid_argument("loop.cycle() needs at least one argument");
      return args[size_t(*position) % args.size()];
    };
    Value cycle;
    cycle.kind = Value::Kind::kFunction;
    cycle.fn = std::move(fn);
    for (int64_t k = 0; k < n; ++k) {
      if (++work_ > kMaxWork)
        return fail(s.line, "the template does too much work (over " + std::to_string(kMaxWork) +
                                " steps)");
      // Each iteration has its own scope: a set inside does not outlive it (jinja2).
      frames_.emplace_back();
      Dict loop;
      loop.set("index", Value::integer(k + 1));
      loop.set("index0", Value::integer(k));
      loop.set("revindex", Value::integer(n - k));
      loop.set("revindex0", Value::integer(n - k - 1));
      loop.set("first", Value::boolean(k == 0));
      loop.set("last", Value::boolean(k == n - 1));
      loop.set("length", Value::integer(n));
      loop.set("previtem",
               k > 0 ? items[size_t(k - 1)] : Value::undefined("'previtem' is undefined"));
      loop.set("nextitem",
               k + 1 < n ? items[size_t(k + 1)] : Value::undefined("'nextitem' is undefined"));
      *position = k;
      loop.set("cycle", cycle);
      assign("loop", Value::make_dict(std::move(loop)));
      Status st = bind(items[size_t(k)]);
      Flow inner = Flow::kNormal;
      if (st.ok()) st = exec(s.bodies[0], inner);
      frames_.pop_back();
      HAL_RETURN_IF_ERROR(st);
      if (inner == Flow::kBreak) break;
    }
    --loop_depth_;
    --depth_;
    return ok_status();
  }

  Result<Value> eval(const Expr& e) {
    if (++work_ > kMaxWork)
      return fail(e.line,
                  "the template does too much work (over " + std::to_string(kMaxWork) + " steps)");
    auto r = eval_inner(e);
    // Sequences and strings an expression builds count by their size (reading a variable
    // that holds one builds nothing).
    const bool builds = e.kind != Expr::Kind::kName && e.kind != Expr::Kind::kAttr &&
                        e.kind != Expr::Kind::kItem && e.kind != Expr::Kind::kLiteral &&
                        e.kind != Expr::Kind::kCondition;
    if (r.ok() && builds && (r->is_sequence() || r->is_string()))
      work_ += int64_t(r->is_string() ? r->s.size() / 16 : r->list->size());
    if (!r.ok()) return located(e.line, r.status());
    return r;
  }

  Status undefined_error(const Value& v) const {
    return invalid_argument(v.s.empty() ? std::string("value is undefined") : v.s);
  }

  Result<Value> eval_inner(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral:
        return e.value;
      case Expr::Kind::kName:
        return lookup(e.name);
      case Expr::Kind::kList: {
        std::vector<Value> items;
        for (const auto& c : e.children) {
          HAL_ASSIGN_OR_RETURN(Value v, eval(*c));
          items.push_back(std::move(v));
        }
        return Value::make_list(std::move(items), e.is_tuple);
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.children.size(); k += 2) {
          HAL_ASSIGN_OR_RETURN(const Value key, eval(*e.children[k]));
          HAL_ASSIGN_OR_RETURN(Value v, eval(*e.children[k + 1]));
          if (!key.is_string()) return invalid_argument("dict keys must be strings here");
          d.set(key.s, std::move(v));
        }
        return Value::make_dict(std::move(d));
      }
      case Expr::Kind::kAttr: {
        HAL_ASSIGN_OR_RETURN(const Value base, eval(*e.children[0]));
        if (base.is_undefined()) return undefined_error(base);
        Value v = get_attribute(base, e.name);
        if (v.is_undefined()) v.s = "'" + base.str() + "' has no attribute '" + e.name + "'";
        return v;
      }
      case Expr::Kind::kItem: {
        HAL_ASSIGN_OR_RETURN(const Value base, eval(*e.children[0]));
        HAL_ASSIGN_OR_RETURN(const Value key, eval(*e.children[1]));
        if (base.is_undefined()) return undefined_error(base);
        Value v = get_item(base, key);
        if (v.is_undefined()) v.s = "'" + base.str() + "' has no item " + key.repr();
        return v;
      }
      case Expr::Kind::kSlice:
        return eval_slice(e);
      case Expr::Kind::kCall: {
        HAL_ASSIGN_OR_RETURN(const Value callee, eval(*e.children[0]));
        if (callee.is_undefined()) return undefined_error(callee);
        if (callee.kind != Value::Kind::kFunction)
          return invalid_argument("'" + callee.str() + "' is not callable");
        Args args;
        KwArgs kwargs;
        HAL_RETURN_IF_ERROR(eval_args(e, 1, args, kwargs));
        return callee.fn->call(args, kwargs);
      }
      case Expr::Kind::kFilter: {
        HAL_ASSIGN_OR_RETURN(const Value v, eval(*e.children[0]));
        Args args;
        KwArgs kwargs;
        HAL_RETURN_IF_ERROR(eval_args(e, 1, args, kwargs));
        return apply_filter(e.name, v, args, kwargs);
      }
      case Expr::Kind::kTest: {
        HAL_ASSIGN_OR_RETURN(const Value v, eval(*e.children[0]));
        Args args;
        KwArgs kwargs;
        HAL_RETURN_IF_ERROR(eval_args(e, 1, args, kwargs));
        HAL_ASSIGN_OR_RETURN(const bool yes, apply_test(e.name, v, args));
        return Value::boolean(yes != e.negated);
      }
      case Expr::Kind::kUnary: {
        HAL_ASSIGN_OR_RETURN(const Value v, eval(*e.children[0]));
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.is_undefined()) return undefined_error(v);
        if (v.kind == Value::Kind::kInt || v.kind == Value::Kind::kBool) {
          const int64_t x = v.kind == Value::Kind::kBool ? int64_t(v.b) : v.i;
          return Value::integer(e.name == "-" ? -x : x);
        }
        if (v.kind == Value::Kind::kFloat) return Value::number(e.name == "-" ? -v.f : v.f);
        return invalid_argument("bad operand for unary " + e.name + ": " + v.repr());
      }
      case Expr::Kind::kBinary:
        return eval_binary(e);
      case Expr::Kind::kCondition: {
        HAL_ASSIGN_OR_RETURN(const Value c, eval(*e.children[0]));
        if (c.truthy()) return eval(*e.children[1]);
        if (e.children[2]) return eval(*e.children[2]);
        return Value::undefined("the condition of an inline if was false and it has no else");
      }
    }
    return invalid_argument("unknown expression");
  }

  Status eval_args(const Expr& e, size_t first, Args& args, KwArgs& kwargs) {
    for (size_t k = first; k < e.children.size(); ++k) {
      HAL_ASSIGN_OR_RETURN(Value v, eval(*e.children[k]));
      args.push_back(std::move(v));
    }
    for (const auto& [key, expr] : e.kwargs) {
      HAL_ASSIGN_OR_RETURN(Value v, eval(*expr));
      kwargs.emplace_back(key, std::move(v));
    }
    return ok_status();
  }

  Result<Value> eval_slice(const Expr& e) {
    HAL_ASSIGN_OR_RETURN(const Value base, eval(*e.children[0]));
    if (base.is_undefined()) return undefined_error(base);
    int64_t bounds[3] = {0, 0, 1};
    bool given[3] = {false, false, false};
    for (int k = 0; k < 3; ++k) {
      if (!e.children[size_t(k) + 1]) continue;
      HAL_ASSIGN_OR_RETURN(const Value v, eval(*e.children[size_t(k) + 1]));
      if (v.is_none()) continue;
      if (v.kind != Value::Kind::kInt) return invalid_argument("slice indices must be integers");
      bounds[k] = v.i;
      given[k] = true;
    }
    const int64_t step = given[2] ? bounds[2] : 1;
    if (step == 0) return invalid_argument("slice step cannot be zero");
    std::vector<std::string_view> chars;
    int64_t n = 0;
    if (base.is_string()) {
      chars = code_points(base.s);
      n = int64_t(chars.size());
    } else if (base.is_sequence()) {
      n = int64_t(base.list->size());
    } else {
      return invalid_argument("'" + base.str() + "' cannot be sliced");
    }
    // Python's slice.indices().
    auto clamp = [&](int64_t v, bool is_given, int64_t fallback) {
      if (!is_given) return fallback;
      if (v < 0) v += n;
      if (step > 0) return std::clamp<int64_t>(v, 0, n);
      return std::clamp<int64_t>(v, -1, n - 1);
    };
    const int64_t start = clamp(bounds[0], given[0], step > 0 ? 0 : n - 1);
    const int64_t stop = clamp(bounds[1], given[1], step > 0 ? n : -1);
    std::string s;
    std::vector<Value> items;
    for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) {
      if (base.is_string())
        s.append(chars[size_t(k)]);
      else
        items.push_back((*base.list)[size_t(k)]);
    }
    if (base.is_string()) return Value::string(std::move(s));
    return Value::make_list(std::move(items), base.kind == Value::Kind::kTuple);
  }

  Result<Value> eval_binary(const Expr& e) {
    const std::string& op = e.name;
    HAL_ASSIGN_OR_RETURN(const Value a, eval(*e.children[0]));
    if (op == "and") return a.truthy() ? eval(*e.children[1]) : a;
    if (op == "or") return a.truthy() ? a : eval(*e.children[1]);
    HAL_ASSIGN_OR_RETURN(const Value b, eval(*e.children[1]));
    if (op == "~") return Value::string(a.str() + b.str());
    if (op == "==") return Value::boolean(equal(a, b));
    if (op == "!=") return Value::boolean(!equal(a, b));
    if (op == "in" || op == "not in") {
      HAL_ASSIGN_OR_RETURN(const bool found, contains(b, a));
      return Value::boolean(found == (op == "in"));
    }
    if (a.is_undefined()) return undefined_error(a);
    if (b.is_undefined()) return undefined_error(b);
    if (op == "<" || op == ">" || op == "<=" || op == ">=") return compare(op, a, b);
    return arithmetic(op, a, b);
  }

  static Result<bool> contains(const Value& container, const Value& item) {
    switch (container.kind) {
      case Value::Kind::kUndefined:
        return false;
      case Value::Kind::kString:
        if (!item.is_string())
          return invalid_argument("'in <string>' requires a string as left operand, not " +
                                  item.repr());
        return container.s.find(item.s) != std::string::npos;
      case Value::Kind::kList:
      case Value::Kind::kTuple:
        for (const Value& v : *container.list)
          if (equal(v, item)) return true;
        return false;
      case Value::Kind::kDict:
      case Value::Kind::kNamespace:
        return item.is_string() && container.dict->find(item.s) != nullptr;
      default:
        return invalid_argument("argument of type '" + container.str() + "' is not iterable");
    }
  }

  static Result<Value> compare(const std::string& op, const Value& a, const Value& b) {
    if (op == ">") {
      HAL_ASSIGN_OR_RETURN(const bool r, less(b, a));
      return Value::boolean(r);
    }
    if (op == "<") {
      HAL_ASSIGN_OR_RETURN(const bool r, less(a, b));
      return Value::boolean(r);
    }
    if (op == "<=") {
      HAL_ASSIGN_OR_RETURN(const bool r, less(b, a));
      return Value::boolean(!r);
    }
    HAL_ASSIGN_OR_RETURN(const bool r, less(a, b));
    return Value::boolean(!r);
  }

  static Result<Value> arithmetic(const std::string& op, const Value& a, const Value& b) {
    using K = Value::Kind;
    const bool an = a.is_number() || a.kind == K::kBool, bn = b.is_number() || b.kind == K::kBool;
    auto as_int = [](const Value& v) { return v.kind == K::kBool ? int64_t(v.b) : v.i; };
    const bool ints = an && bn && a.kind != K::kFloat && b.kind != K::kFloat;
    auto type_error = [&]() {
      return invalid_argument("unsupported operand types for " + op + ": " + a.repr() + " and " +
                              b.repr());
    };
    if (op == "+") {
      if (ints) return Value::integer(as_int(a) + as_int(b));
      if (an && bn) return Value::number(a.as_double() + b.as_double());
      if (a.is_string() && b.is_string()) return Value::string(a.s + b.s);
      if (a.is_sequence() && a.kind == b.kind) {
        std::vector<Value> items = *a.list;
        items.insert(items.end(), b.list->begin(), b.list->end());
        return Value::make_list(std::move(items), a.kind == K::kTuple);
      }
      return type_error();
    }
    if (op == "*") {
      if (ints) return Value::integer(as_int(a) * as_int(b));
      if (an && bn) return Value::number(a.as_double() * b.as_double());
      const Value* seq = a.is_string() || a.is_sequence() ? &a : &b;
      const Value* count = seq == &a ? &b : &a;
      if ((seq->is_string() || seq->is_sequence()) &&
          (count->kind == K::kInt || count->kind == K::kBool)) {
        const int64_t times = as_int(*count);
        if (times > 0 && (seq->is_string() ? seq->s.size() : seq->list->size()) * size_t(times) >
                             kMaxOutputBytes)
          return invalid_argument("repetition too large");
        if (seq->is_string()) {
          std::string s;
          for (int64_t k = 0; k < times; ++k) s += seq->s;
          return Value::string(std::move(s));
        }
        std::vector<Value> items;
        for (int64_t k = 0; k < times; ++k)
          items.insert(items.end(), seq->list->begin(), seq->list->end());
        return Value::make_list(std::move(items), seq->kind == K::kTuple);
      }
      return type_error();
    }
    if (!an || !bn) {
      if (op == "%" && a.is_string())
        return invalid_argument("printf-style string formatting ('...' % args) is not supported");
      return type_error();
    }
    if (op == "-") {
      if (ints) return Value::integer(as_int(a) - as_int(b));
      return Value::number(a.as_double() - b.as_double());
    }
    if (op == "/") {
      if (b.as_double() == 0) return invalid_argument("division by zero");
      return Value::number(a.as_double() / b.as_double());
    }
    if (op == "//" || op == "%") {
      if (b.as_double() == 0) return invalid_argument("integer division or modulo by zero");
      if (ints) {
        const int64_t x = as_int(a), y = as_int(b);
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          --q;
          r += y;
        }
        return Value::integer(op == "//" ? q : r);
      }
      const double x = a.as_double(), y = b.as_double();
      const double q = std::floor(x / y);
      return Value::number(op == "//" ? q : x - q * y);
    }
    if (op == "**") {
      if (ints && as_int(b) >= 0 && as_int(b) <= 64) {
        int64_t r = 1;
        for (int64_t k = 0; k < as_int(b); ++k) r *= as_int(a);
        return Value::integer(r);
      }
      return Value::number(std::pow(a.as_double(), b.as_double()));
    }
    return invalid_argument("unknown operator " + op);
  }

  const Template& t_;
  const Value& globals_;
  std::vector<Frame> frames_;
  std::string out_;
  int loop_depth_ = 0;
  int depth_ = 0;
  int64_t work_ = 0;
};

}  // namespace

Result<std::string> render(const Template& t, const Value& globals) {
  Renderer r(t, globals);
  return r.run();
}

}  // namespace hal::text::detail::jinja

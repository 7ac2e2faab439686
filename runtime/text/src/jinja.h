// jinja.h (internal): the strict Jinja interpreter behind chat templates
// (hal/text/chat_template.h): values with Python semantics, the syntax tree, the parser
// and the evaluator.
//
// Values: undefined, none, bool, int, float, string, list, tuple, dict (string keys, in
// insertion order), namespace (the one mutable object) and functions (globals and bound
// methods). Strings are UTF-8 and are indexed, sliced and measured in code points, as in
// Python. As in jinja2's default Undefined: an undefined value prints as "", is false and
// iterates as empty, but using it in arithmetic or looking into it is an error.
//
// Threading: a parsed Template is immutable; each render has its own state.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "hal/status.h"

namespace hal::text::detail::jinja {

struct Value;
struct Dict;
struct Function;

struct Value {
  enum class Kind {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kTuple,
    kDict,
    kNamespace,
    kFunction
  };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // kString; for kUndefined, the name that was undefined (for errors)
  std::shared_ptr<const std::vector<Value>> list;  // kList, kTuple
  std::shared_ptr<Dict> dict;                      // kDict (never mutated), kNamespace
  std::shared_ptr<const Function> fn;              // kFunction

  static Value undefined(std::string name = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value number(double v);
  static Value string(std::string v);
  static Value make_list(std::vector<Value> v, bool tuple = false);
  static Value make_dict(Dict d);

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kInt || kind == Kind::kFloat; }
  bool is_sequence() const { return kind == Kind::kList || kind == Kind::kTuple; }
  bool is_mapping() const { return kind == Kind::kDict || kind == Kind::kNamespace; }
  double as_double() const { return kind == Kind::kInt ? double(i) : kind == Kind::kBool ? b : f; }

  // Python truthiness.
  bool truthy() const;
  // str(value) as Jinja prints it ({{ value }}): None, True, 1.5, [1, 'a'], ...
  std::string str() const;
  // repr(value): strings quoted.
  std::string repr() const;
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view key) const;
  void set(std::string key, Value v);
};

using Args = std::vector<Value>;
using KwArgs = std::vector<std::pair<std::string, Value>>;

struct Function {
  std::string name;
  std::function<Result<Value>(const Args&, const KwArgs&)> call;
};

// Python's == between values (1 == 1.0; lists and dicts element by element).
bool equal(const Value& a, const Value& b);
// Python's < for numbers, strings and sequences; INVALID_ARGUMENT for other types.
Result<bool> less(const Value& a, const Value& b);
// json.dumps(value, ensure_ascii=False, indent=indent (< 0: none)), as transformers'
// tojson filter writes it.
Result<std::string> to_json(const Value& v, int indent);
// Python's repr() of a float.
std::string float_repr(double v);

// Code points of a UTF-8 string (Python's str indexing works on them).
std::vector<std::string_view> code_points(std::string_view s);

// ---- syntax tree ---------------------------------------------------------------------

struct Expr {
  enum class Kind {
    kLiteral,    // value
    kName,       // name
    kList,       // children (tuple when is_tuple)
    kDict,       // children: key, value, key, value...
    kAttr,       // children[0].name
    kItem,       // children[0][children[1]]
    kSlice,      // children[0][children[1]:children[2]:children[3]] (null = omitted)
    kCall,       // children[0](children[1..], kwargs)
    kFilter,     // children[0] | name(children[1..], kwargs)
    kTest,       // children[0] is [not] name(children[1..])
    kUnary,      // op children[0]: "not", "-", "+"
    kBinary,     // children[0] op children[1]: arithmetic, comparisons, in, and, or, ~
    kCondition,  // children[1] if children[0] else children[2] (children[2] may be null)
  } kind;
  int line = 0;
  Value value;
  std::string name;      // name, attribute, filter, test or operator
  bool negated = false;  // kTest: "is not"
  bool is_tuple = false;
  std::vector<std::unique_ptr<Expr>> children;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
};

struct Stmt {
  enum class Kind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kBreak, kContinue, kBlock } kind;
  int line = 0;
  std::string text;            // kText
  std::unique_ptr<Expr> expr;  // kOutput, kSet value, kFor iterable
  // kIf: conditions[k] guards bodies[k]; a trailing body without condition is else.
  std::vector<std::unique_ptr<Expr>> conditions;
  std::vector<std::vector<std::unique_ptr<Stmt>>> bodies;
  // kFor: targets, optional filter (conditions[0]), body = bodies[0], else = bodies[1].
  // kSet / kSetBlock: targets (names), or namespace `target_object`.`targets[0]`.
  std::vector<std::string> targets;
  std::string target_object;
  std::unique_ptr<Expr> loop_filter;
};

struct Template {
  std::string name;
  std::vector<std::unique_ptr<Stmt>> body;
};

// ---- builtins (jinja_builtins.cc) --------------------------------------------------------

// `value.name`: a dict key or method, a string method, a namespace attribute; undefined
// when there is none.
Value get_attribute(const Value& value, std::string_view name);
// `value[key]` (lists, tuples and strings by int index, negative from the end; dicts by
// key; a string key also finds attributes): undefined when there is none.
Value get_item(const Value& value, const Value& key);
// `value | name(args, kwargs)`; INVALID_ARGUMENT for an unknown filter or bad arguments.
Result<Value> apply_filter(std::string_view name, const Value& value, const Args& args,
                           const KwArgs& kwargs);
// `value is name(args)`.
Result<bool> apply_test(std::string_view name, const Value& value, const Args& args);
// range, namespace, dict, raise_exception, strftime_now; undefined for other names.
Value global_function(std::string_view name);

// Parses `source` with trim_blocks and lstrip_blocks. Errors name the template and line.
Result<std::shared_ptr<const Template>> parse(std::string_view source, std::string_view name);
// Renders with `globals` (a dict value) as the outermost scope.
Result<std::string> render(const Template& t, const Value& globals);

}  // namespace hal::text::detail::jinja

// The interpreter: walks the Program with a stack of variable frames. A for loop pushes a frame
// per iteration (so `set` inside a loop does not leak out, as in Jinja; namespace() objects carry
// state across iterations); a macro call sees the render variables and its own arguments.
#include "tokenizer/jinja/template.h"

#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/parser.h"

namespace fdpp::jinja {
namespace {

enum class Flow { kNormal, kBreak, kContinue };

[[noreturn]] void fail_at(int line, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, fmt::format("chat template line {}: {}", line, what));
}

class Interpreter {
 public:
  explicit Interpreter(const Dict& variables) {
    add_globals(globals_);
    frames_.emplace_back();
    for (const auto& [k, v] : variables.items()) frames_.back()[k] = v;
  }

  std::string run(const Body& body) {
    std::string out;
    exec(body, out);
    return out;
  }

 private:
  using Frame = std::unordered_map<std::string, Value>;

  // ---- variables ----
  Value lookup(const std::string& name) const {
    for (auto it = frames_.rbegin(); it != frames_.rend(); ++it)
      if (auto f = it->find(name); f != it->end()) return f->second;
    if (const Value* g = globals_.find(name)) return *g;
    return Value();
  }
  void assign(const std::string& name, Value v) { frames_.back()[name] = std::move(v); }

  // ---- statements ----
  Flow exec(const Body& body, std::string& out) {
    for (const StmtPtr& s : body) {
      const Flow f = exec_one(*s, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow exec_one(const Stmt& s, std::string& out) {
    switch (s.kind) {
      case Stmt::Kind::kText: out += s.text; return Flow::kNormal;
      case Stmt::Kind::kOutput: out += eval(*s.expr).str(); return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches)
          if (!cond || eval(*cond).truthy()) return exec(body, out);
        return Flow::kNormal;
      case Stmt::Kind::kFor: exec_for(s, out); return Flow::kNormal;
      case Stmt::Kind::kSet: exec_set(s, eval(*s.expr)); return Flow::kNormal;
      case Stmt::Kind::kSetBlock: {
        std::string captured;
        exec(s.body, captured);
        assign(s.targets[0], Value(std::move(captured)));
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro: define_macro(s); return Flow::kNormal;
      case Stmt::Kind::kFilterBlock: {
        std::string captured;
        const Flow f = exec(s.body, captured);
        out += apply_filter(*s.expr, Value(std::move(captured))).str();
        return f;
      }
      case Stmt::Kind::kBreak: return Flow::kBreak;
      case Stmt::Kind::kContinue: return Flow::kContinue;
      case Stmt::Kind::kBlock: return exec(s.body, out);
    }
    return Flow::kNormal;
  }

  void exec_set(const Stmt& s, Value v) {
    if (!s.attr.empty()) {
      Value target = lookup(s.targets[0]);
      if (!target.is_dict())
        fail_at(s.line, fmt::format("cannot set attribute '{}' on {} '{}' (use namespace())", s.attr,
                                    target.type_name(), s.targets[0]));
      target.as_dict()->set(s.attr, std::move(v));
      return;
    }
    if (s.targets.size() == 1) {
      assign(s.targets[0], std::move(v));
      return;
    }
    unpack(s.targets, v, s.line);
  }

  void unpack(const std::vector<std::string>& targets, const Value& v, int line) {
    if (!v.is_list() || v.as_list()->size() != targets.size())
      fail_at(line, fmt::format("cannot unpack {} into {} names", v.repr(), targets.size()));
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], (*v.as_list())[i]);
  }

  static List iterate(const Value& v, int line) {
    if (v.is_list()) return *v.as_list();
    if (v.is_dict()) {
      List keys;
      for (const auto& kv : v.as_dict()->items()) keys.emplace_back(kv.first);
      return keys;
    }
    if (v.is_string()) return characters(v.as_string());
    if (v.is_undefined() || v.is_none()) return {};
    fail_at(line, fmt::format("a {} is not iterable", v.type_name()));
  }

  void exec_for(const Stmt& s, std::string& out) {
    List all = iterate(eval(*s.expr), s.line);
    List items;
    if (s.condition) {  // the loop filter runs before loop.index etc. are computed
      for (const Value& item : all) {
        frames_.emplace_back();
        bind_targets(s, item);
        const bool keep = eval(*s.condition).truthy();
        frames_.pop_back();
        if (keep) items.push_back(item);
      }
    } else {
      items = std::move(all);
    }
    if (items.empty()) {
      exec(s.else_body, out);
      return;
    }
    const auto n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      frames_.emplace_back();
      bind_targets(s, items[static_cast<size_t>(i)]);
      frames_.back()["loop"] = loop_object(items, i);
      const Flow f = exec(s.body, out);
      frames_.pop_back();
      if (f == Flow::kBreak) break;
    }
  }

  void bind_targets(const Stmt& s, const Value& item) {
    if (s.targets.size() == 1) assign(s.targets[0], item);
    else unpack(s.targets, item, s.line);
  }

  static Value loop_object(const List& items, int64_t i) {
    const auto n = static_cast<int64_t>(items.size());
    Dict loop;
    loop.set("index", Value(i + 1));
    loop.set("index0", Value(i));
    loop.set("revindex", Value(n - i));
    loop.set("revindex0", Value(n - i - 1));
    loop.set("first", Value(i == 0));
    loop.set("last", Value(i == n - 1));
    loop.set("length", Value(n));
    loop.set("depth", Value(1));
    loop.set("depth0", Value(0));
    loop.set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)] : Value());
    loop.set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value());
    loop.set("cycle", Value::callable("loop.cycle", [i](const CallArgs& a) {
      if (a.positional.empty()) return Value();
      return a.positional[static_cast<size_t>(i) % a.positional.size()];
    }));
    return Value(std::move(loop));
  }

  void define_macro(const Stmt& s) {
    const Stmt* def = &s;
    assign(s.name, Value::callable(s.name, [this, def](const CallArgs& args) {
      Frame frame;
      for (size_t i = 0; i < def->params.size(); ++i) {
        const auto& [pname, pdefault] = def->params[i];
        if (auto v = args.get(i, pname)) frame[pname] = *v;
        else frame[pname] = pdefault ? eval(*pdefault) : Value();
      }
      // A macro sees the render variables (the bottom frame) and its arguments.
      std::vector<Frame> saved;
      saved.swap(frames_);
      frames_.push_back(saved.front());
      frames_.push_back(std::move(frame));
      std::string out;
      try {
        exec(def->body, out);
      } catch (...) {
        frames_.swap(saved);
        throw;
      }
      frames_.swap(saved);
      return Value(std::move(out));
    }));
  }

  // ---- expressions ----
  CallArgs eval_args(const Expr& e, size_t first) {
    CallArgs a;
    for (size_t i = first; i < e.args.size(); ++i) a.positional.push_back(eval(*e.args[i]));
    for (const auto& [k, v] : e.kwargs) a.keyword.emplace_back(k, eval(*v));
    return a;
  }

  Value apply_filter(const Expr& e, const Value& input) {
    const CallArgs args = eval_args(e, 1);
    try {
      return call_filter(e.name, input, args);
    } catch (const RaisedError&) {
      throw;
    } catch (const Error& err) {
      fail_at(e.line, err.what());
    }
  }

  Value eval(const Expr& e) {
    switch (e.kind) {
      case Expr::Kind::kLiteral: return e.literal;
      case Expr::Kind::kName: return lookup(e.name);
      case Expr::Kind::kList: {
        List l;
        for (const auto& a : e.args) l.push_back(eval(*a));
        return Value(std::move(l));
      }
      case Expr::Kind::kDict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
          const Value k = eval(*e.args[i]);
          if (!k.is_string()) fail_at(e.line, fmt::format("dict keys must be strings, found {}", k.type_name()));
          d.set(k.as_string(), eval(*e.args[i + 1]));
        }
        return Value(std::move(d));
      }
      case Expr::Kind::kGetAttr: return guarded(e, [&] { return get_attribute(eval(*e.args[0]), e.name); });
      case Expr::Kind::kGetItem:
        return guarded(e, [&] {
          const Value obj = eval(*e.args[0]);
          return get_item(obj, eval(*e.args[1]));
        });
      case Expr::Kind::kSlice:
        return guarded(e, [&] {
          const Value obj = eval(*e.args[0]);
          auto part = [&](size_t i) { return e.args[i] ? eval(*e.args[i]) : Value(); };
          return slice(obj, part(1), part(2), part(3));
        });
      case Expr::Kind::kCall: {
        const Value callee = eval(*e.args[0]);
        if (!callee.is_callable()) {
          std::string what = e.args[0]->kind == Expr::Kind::kName ? "'" + e.args[0]->name + "'"
                             : e.args[0]->kind == Expr::Kind::kGetAttr ? "'" + e.args[0]->name + "'"
                                                                        : "the expression";
          fail_at(e.line, fmt::format("{} is not callable ({})", what, callee.type_name()));
        }
        const CallArgs args = eval_args(e, 1);
        return guarded(e, [&] { return callee.as_callable().fn(args); });
      }
      case Expr::Kind::kFilter: return apply_filter(e, eval(*e.args[0]));
      case Expr::Kind::kTest: {
        const Value input = eval(*e.args[0]);
        const CallArgs args = eval_args(e, 1);
        const bool r = guarded(e, [&] { return call_test(e.name, input, args); });
        return Value(e.negated ? !r : r);
      }
      case Expr::Kind::kUnary: {
        const Value v = eval(*e.args[0]);
        if (e.name == "not") return Value(!v.truthy());
        if (v.is_int()) return Value(e.name == "-" ? -v.as_int() : v.as_int());
        if (v.is_float()) return Value(e.name == "-" ? -v.as_number() : v.as_number());
        fail_at(e.line, fmt::format("bad operand for unary {}: {}", e.name, v.type_name()));
      }
      case Expr::Kind::kAnd: {
        Value a = eval(*e.args[0]);
        return a.truthy() ? eval(*e.args[1]) : a;
      }
      case Expr::Kind::kOr: {
        Value a = eval(*e.args[0]);
        return a.truthy() ? a : eval(*e.args[1]);
      }
      case Expr::Kind::kCond:
        if (eval(*e.args[0]).truthy()) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value();
      case Expr::Kind::kBinary: return binary(e, eval(*e.args[0]), eval(*e.args[1]));
    }
    return Value();
  }

  template <class F>
  auto guarded(const Expr& e, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const RaisedError&) {
      throw;
    } catch (const Error& err) {
      const std::string msg = err.what();
      if (msg.starts_with("chat template line")) throw;
      fail_at(e.line, msg);
    }
  }

  static Value arith(const Expr& e, const Value& a, const Value& b) {
    const std::string& op = e.name;
    if (!a.is_number() || !b.is_number())
      fail_at(e.line, fmt::format("unsupported operand types for {}: {} and {}", op, a.type_name(), b.type_name()));
    const bool ints = a.is_int() && b.is_int();
    if (op == "/") {
      if (b.as_number() == 0) fail_at(e.line, "division by zero");
      return Value(a.as_number() / b.as_number());
    }
    if (op == "//" || op == "%") {
      if (b.as_number() == 0) fail_at(e.line, "division by zero");
      if (ints) {
        const int64_t x = a.as_int(), y = b.as_int();
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {  // Python floors
          --q;
          r += y;
        }
        return Value(op == "//" ? q : r);
      }
      const double x = a.as_number(), y = b.as_number();
      const double q = std::floor(x / y);
      return Value(op == "//" ? q : x - q * y);
    }
    if (op == "**") {
      if (ints && b.as_int() >= 0) {
        int64_t r = 1;
        for (int64_t i = 0; i < b.as_int(); ++i) r *= a.as_int();
        return Value(r);
      }
      return Value(std::pow(a.as_number(), b.as_number()));
    }
    if (ints) {
      if (op == "+") return Value(a.as_int() + b.as_int());
      if (op == "-") return Value(a.as_int() - b.as_int());
      if (op == "*") return Value(a.as_int() * b.as_int());
    }
    if (op == "+") return Value(a.as_number() + b.as_number());
    if (op == "-") return Value(a.as_number() - b.as_number());
    return Value(a.as_number() * b.as_number());
  }

  static bool contains(const Expr& e, const Value& item, const Value& container) {
    if (container.is_string()) {
      if (!item.is_string())
        fail_at(e.line, fmt::format("'in <string>' requires a string on the left, found {}", item.type_name()));
      return container.as_string().find(item.as_string()) != std::string::npos;
    }
    if (container.is_list()) {
      for (const Value& v : *container.as_list())
        if (v == item) return true;
      return false;
    }
    if (container.is_dict()) return item.is_string() && container.as_dict()->find(item.as_string());
    if (container.is_undefined() || container.is_none()) return false;
    fail_at(e.line, fmt::format("'in' needs a string, list or dict on the right, found {}", container.type_name()));
  }

  static Value binary(const Expr& e, const Value& a, const Value& b) {
    const std::string& op = e.name;
    if (op == "~") return Value(a.str() + b.str());
    if (op == "==") return Value(a == b);
    if (op == "!=") return Value(!(a == b));
    if (op == "in") return Value(contains(e, a, b));
    if (op == "not in") return Value(!contains(e, a, b));
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      try {
        if (op == "<") return Value(less_than(a, b));
        if (op == ">") return Value(less_than(b, a));
        if (op == "<=") return Value(!less_than(b, a));
        return Value(!less_than(a, b));
      } catch (const Error& err) {
        fail_at(e.line, err.what());
      }
    }
    if (op == "+") {
      if (a.is_string() && b.is_string()) return Value(a.as_string() + b.as_string());
      if (a.is_list() && b.is_list()) {
        List l = *a.as_list();
        l.insert(l.end(), b.as_list()->begin(), b.as_list()->end());
        return Value(std::move(l));
      }
      if (a.is_string() || b.is_string())
        fail_at(e.line, fmt::format("can only concatenate a string with a string (not {} and {}); use ~",
                                    a.type_name(), b.type_name()));
    }
    if (op == "*" && (a.is_string() || a.is_list()) && b.is_int()) {
      const int64_t n = std::max<int64_t>(0, b.as_int());
      if (a.is_string()) {
        std::string s;
        for (int64_t i = 0; i < n; ++i) s += a.as_string();
        return Value(std::move(s));
      }
      List l;
      for (int64_t i = 0; i < n; ++i) l.insert(l.end(), a.as_list()->begin(), a.as_list()->end());
      return Value(std::move(l));
    }
    return arith(e, a, b);
  }

  Dict globals_;
  std::vector<Frame> frames_;
};

}  // namespace

Template::Template(std::string_view source, const LexOptions& options)
    : program_(std::make_shared<const Program>(parse(source, options))) {}

Template::~Template() = default;

std::string Template::render(const Dict& variables) const {
  Interpreter interp(variables);
  return interp.run(program_->body);
}

}  // namespace fdpp::jinja

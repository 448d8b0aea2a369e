// Recursive descent over the lexer's tokens; one function per precedence level.
#include "tokenizer/jinja/parser.h"

#include <fmt/format.h>

#include <initializer_list>

#include "fdpp/status.h"

namespace fdpp::jinja {
namespace {

using TT = Token::Type;

std::string describe(const Token& t) {
  switch (t.type) {
    case TT::kText: return "text";
    case TT::kExprOpen: return "'{{'";
    case TT::kExprClose: return "'}}'";
    case TT::kStmtOpen: return "'{%'";
    case TT::kStmtClose: return "'%}'";
    case TT::kName: return "'" + t.text + "'";
    case TT::kString: return "a string";
    case TT::kInt:
    case TT::kFloat: return "number " + t.text;
    case TT::kOp: return "'" + t.text + "'";
    case TT::kEnd: return "the end of the template";
  }
  return "?";
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Program program() {
    Program p;
    std::string end;
    p.body = body({}, end);
    return p;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void next() { if (pos_ + 1 < toks_.size()) ++pos_; }
  bool is_op(const char* op) const { return cur().type == TT::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == TT::kName && cur().text == n; }
  bool accept_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool accept_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  [[noreturn]] void fail(const std::string& expected) const {
    throw Error(ErrorCode::kParse, fmt::format("chat template line {}: expected {}, found {}", cur().line,
                                               expected, describe(cur())));
  }
  void expect_op(const char* op) {
    if (!accept_op(op)) fail(fmt::format("'{}'", op));
  }
  void expect(TT type, const char* what) {
    if (cur().type != type) fail(what);
    next();
  }
  std::string expect_identifier() {
    if (cur().type != TT::kName) fail("a name");
    std::string n = cur().text;
    next();
    return n;
  }

  // ---- statements ----

  // Parses statements until a {% tag whose keyword is in `ends`; leaves the position after that
  // keyword (inside the tag) and stores the keyword in `end`. With no `ends`, runs to kEnd.
  Body body(std::initializer_list<const char*> ends, std::string& end) {
    Body out;
    for (;;) {
      const Token& t = cur();
      if (t.type == TT::kEnd) {
        if (ends.size() == 0) return out;
        std::string want;
        for (const char* e : ends) want += (want.empty() ? "" : " or ") + fmt::format("{{% {} %}}", e);
        fail(want);
      }
      if (t.type == TT::kText) {
        auto s = make_stmt(Stmt::Kind::kText);
        s->text = t.text;
        next();
        out.push_back(std::move(s));
        continue;
      }
      if (t.type == TT::kExprOpen) {
        next();
        auto s = make_stmt(Stmt::Kind::kOutput);
        s->expr = expression();
        expect(TT::kExprClose, "'}}'");
        out.push_back(std::move(s));
        continue;
      }
      if (t.type != TT::kStmtOpen) fail("text or a tag");
      next();
      if (cur().type != TT::kName) fail("a statement keyword");
      const std::string kw = cur().text;
      for (const char* e : ends)
        if (kw == e) {
          next();
          end = kw;
          return out;
        }
      out.push_back(statement());
    }
  }

  StmtPtr make_stmt(Stmt::Kind kind) const {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = cur().line;
    return s;
  }

  void close_tag() { expect(TT::kStmtClose, "'%}'"); }

  StmtPtr statement() {
    const std::string kw = cur().text;
    if (kw == "if") return if_stmt();
    if (kw == "for") return for_stmt();
    if (kw == "set") return set_stmt();
    if (kw == "macro") return macro_stmt();
    if (kw == "filter") return filter_stmt();
    if (kw == "break" || kw == "continue") {
      auto s = make_stmt(kw == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue);
      next();
      close_tag();
      return s;
    }
    if (kw == "generation") {
      auto s = make_stmt(Stmt::Kind::kBlock);
      next();
      close_tag();
      std::string end;
      s->body = body({"endgeneration"}, end);
      close_tag();
      return s;
    }
    throw Error(ErrorCode::kParse,
                fmt::format("chat template line {}: unknown or unexpected statement '{{% {} %}}'", cur().line, kw));
  }

  StmtPtr if_stmt() {
    auto s = make_stmt(Stmt::Kind::kIf);
    next();  // if
    ExprPtr cond = expression();
    close_tag();
    for (;;) {
      std::string end;
      Body b = body({"elif", "else", "endif"}, end);
      s->branches.emplace_back(std::move(cond), std::move(b));
      if (end == "endif") {
        close_tag();
        return s;
      }
      if (end == "elif") {
        cond = expression();
        close_tag();
        continue;
      }
      close_tag();  // else
      std::string end2;
      Body eb = body({"endif"}, end2);
      close_tag();
      s->branches.emplace_back(nullptr, std::move(eb));
      return s;
    }
  }

  StmtPtr for_stmt() {
    auto s = make_stmt(Stmt::Kind::kFor);
    next();  // for
    const bool paren = accept_op("(");
    s->targets.push_back(expect_identifier());
    while (accept_op(",")) s->targets.push_back(expect_identifier());
    if (paren) expect_op(")");
    if (!accept_name("in")) fail("'in'");
    s->expr = or_expr();  // no conditional: a trailing 'if' filters the loop
    if (accept_name("if")) s->condition = or_expr();
    accept_name("recursive");
    close_tag();
    std::string end;
    s->body = body({"else", "endfor"}, end);
    close_tag();
    if (end == "else") {
      std::string end2;
      s->else_body = body({"endfor"}, end2);
      close_tag();
    }
    return s;
  }

  StmtPtr set_stmt() {
    auto s = make_stmt(Stmt::Kind::kSet);
    next();  // set
    s->targets.push_back(expect_identifier());
    if (accept_op(".")) {
      s->attr = expect_identifier();
    } else {
      while (accept_op(",")) s->targets.push_back(expect_identifier());
    }
    if (cur().type == TT::kStmtClose) {
      if (!s->attr.empty() || s->targets.size() != 1) fail("'='");
      s->kind = Stmt::Kind::kSetBlock;
      close_tag();
      std::string end;
      s->body = body({"endset"}, end);
      close_tag();
      return s;
    }
    expect_op("=");
    s->expr = tuple_or_expression();
    close_tag();
    return s;
  }

  StmtPtr macro_stmt() {
    auto s = make_stmt(Stmt::Kind::kMacro);
    next();  // macro
    s->name = expect_identifier();
    expect_op("(");
    while (!accept_op(")")) {
      std::string pname = expect_identifier();
      ExprPtr def;
      if (accept_op("=")) def = expression();
      s->params.emplace_back(std::move(pname), std::move(def));
      if (!is_op(")")) expect_op(",");
    }
    close_tag();
    std::string end;
    s->body = body({"endmacro"}, end);
    close_tag();
    return s;
  }

  StmtPtr filter_stmt() {
    auto s = make_stmt(Stmt::Kind::kFilterBlock);
    next();  // filter
    s->expr = filter_call(nullptr);
    close_tag();
    std::string end;
    s->body = body({"endfilter"}, end);
    close_tag();
    return s;
  }

  // ---- expressions ----

  ExprPtr make(Expr::Kind kind, int line) const {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }
  ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr a, ExprPtr b) const {
    auto e = make(kind, a->line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  // `a, b` without brackets (set x = 1, 2) is a tuple.
  ExprPtr tuple_or_expression() {
    ExprPtr first = expression();
    if (!is_op(",")) return first;
    auto list = make(Expr::Kind::kList, first->line);
    list->args.push_back(std::move(first));
    while (accept_op(",")) list->args.push_back(expression());
    return list;
  }

  ExprPtr expression() {
    ExprPtr e = or_expr();
    while (is_name("if")) {
      next();
      auto c = make(Expr::Kind::kCond, e->line);
      c->args.push_back(or_expr());
      c->args.push_back(std::move(e));
      c->args.push_back(accept_name("else") ? expression() : nullptr);
      e = std::move(c);
    }
    return e;
  }

  ExprPtr or_expr() {
    ExprPtr e = and_expr();
    while (accept_name("or")) e = binary(Expr::Kind::kOr, "or", std::move(e), and_expr());
    return e;
  }

  ExprPtr and_expr() {
    ExprPtr e = not_expr();
    while (accept_name("and")) e = binary(Expr::Kind::kAnd, "and", std::move(e), not_expr());
    return e;
  }

  ExprPtr not_expr() {
    if (is_name("not")) {
      const int line = cur().line;
      next();
      auto e = make(Expr::Kind::kUnary, line);
      e->name = "not";
      e->args.push_back(not_expr());
      return e;
    }
    return compare();
  }

  ExprPtr compare() {
    ExprPtr e = math1();
    for (;;) {
      if (cur().type == TT::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        std::string op = cur().text;
        next();
        e = binary(Expr::Kind::kBinary, op, std::move(e), math1());
      } else if (is_name("in")) {
        next();
        e = binary(Expr::Kind::kBinary, "in", std::move(e), math1());
      } else if (is_name("not") && peek().type == TT::kName && peek().text == "in") {
        next();
        next();
        e = binary(Expr::Kind::kBinary, "not in", std::move(e), math1());
      } else {
        return e;
      }
    }
  }

  ExprPtr math1() {
    ExprPtr e = concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      next();
      e = binary(Expr::Kind::kBinary, op, std::move(e), concat());
    }
    return e;
  }

  ExprPtr concat() {
    ExprPtr e = math2();
    while (accept_op("~")) e = binary(Expr::Kind::kBinary, "~", std::move(e), math2());
    return e;
  }

  ExprPtr math2() {
    ExprPtr e = power();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      next();
      e = binary(Expr::Kind::kBinary, op, std::move(e), power());
    }
    return e;
  }

  ExprPtr power() {
    ExprPtr e = unary(true);
    while (accept_op("**")) e = binary(Expr::Kind::kBinary, "**", std::move(e), unary(true));
    return e;
  }

  ExprPtr unary(bool with_filter) {
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      const int line = cur().line;
      std::string op = cur().text;
      next();
      e = make(Expr::Kind::kUnary, line);
      e->name = op;
      e->args.push_back(unary(false));
    } else {
      e = primary();
    }
    e = postfix(std::move(e));
    if (with_filter) e = filters_and_tests(std::move(e));
    return e;
  }

  ExprPtr primary() {
    const Token& t = cur();
    const int line = t.line;
    switch (t.type) {
      case TT::kName: {
        auto e = make(Expr::Kind::kLiteral, line);
        if (t.text == "true" || t.text == "True") e->literal = Value(true);
        else if (t.text == "false" || t.text == "False") e->literal = Value(false);
        else if (t.text == "none" || t.text == "None") e->literal = Value::none();
        else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        next();
        return e;
      }
      case TT::kString: {
        std::string s = t.text;
        next();
        while (cur().type == TT::kString) {  // adjacent literals concatenate
          s += cur().text;
          next();
        }
        auto e = make(Expr::Kind::kLiteral, line);
        e->literal = Value(std::move(s));
        return e;
      }
      case TT::kInt: {
        auto e = make(Expr::Kind::kLiteral, line);
        e->literal = Value(t.int_value);
        next();
        return e;
      }
      case TT::kFloat: {
        auto e = make(Expr::Kind::kLiteral, line);
        e->literal = Value(t.float_value);
        next();
        return e;
      }
      case TT::kOp:
        if (t.text == "(") {
          next();
          if (accept_op(")")) return make(Expr::Kind::kList, line);  // ()
          ExprPtr first = expression();
          if (accept_op(")")) return first;
          auto list = make(Expr::Kind::kList, line);
          list->args.push_back(std::move(first));
          while (accept_op(",")) {
            if (is_op(")")) break;
            list->args.push_back(expression());
          }
          expect_op(")");
          return list;
        }
        if (t.text == "[") {
          next();
          auto list = make(Expr::Kind::kList, line);
          while (!accept_op("]")) {
            list->args.push_back(expression());
            if (!is_op("]")) expect_op(",");
          }
          return list;
        }
        if (t.text == "{") {
          next();
          auto dict = make(Expr::Kind::kDict, line);
          while (!accept_op("}")) {
            dict->args.push_back(expression());
            expect_op(":");
            dict->args.push_back(expression());
            if (!is_op("}")) expect_op(",");
          }
          return dict;
        }
        break;
      default: break;
    }
    fail("an expression");
  }

  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      if (is_op(".")) {
        next();
        auto g = make(Expr::Kind::kGetAttr, e->line);
        if (cur().type == TT::kInt) {  // x.0 is x[0]
          g->kind = Expr::Kind::kGetItem;
          auto idx = make(Expr::Kind::kLiteral, cur().line);
          idx->literal = Value(cur().int_value);
          next();
          g->args.push_back(std::move(e));
          g->args.push_back(std::move(idx));
        } else {
          g->name = expect_identifier();
          g->args.push_back(std::move(e));
        }
        e = std::move(g);
      } else if (is_op("[")) {
        next();
        e = subscript(std::move(e));
      } else if (is_op("(")) {
        e = call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr subscript(ExprPtr obj) {
    const int line = obj->line;
    ExprPtr parts[3];
    int colons = 0;
    for (;;) {
      if (is_op("]")) break;
      if (accept_op(":")) {
        if (++colons > 2) fail("']'");
        continue;
      }
      if (parts[colons]) fail("':' or ']'");
      parts[colons] = expression();
    }
    next();  // ]
    if (colons == 0) {
      if (!parts[0]) fail("an index");
      auto g = make(Expr::Kind::kGetItem, line);
      g->args.push_back(std::move(obj));
      g->args.push_back(std::move(parts[0]));
      return g;
    }
    auto s = make(Expr::Kind::kSlice, line);
    s->args.push_back(std::move(obj));
    for (auto& p : parts) s->args.push_back(std::move(p));
    return s;
  }

  // Parses "(args)" into e's args (after args[0]) and kwargs.
  void call_args(Expr& e) {
    expect_op("(");
    while (!accept_op(")")) {
      if (cur().type == TT::kName && peek().type == TT::kOp && peek().text == "=") {
        std::string key = cur().text;
        next();
        next();
        e.kwargs.emplace_back(std::move(key), expression());
      } else {
        e.args.push_back(expression());
      }
      if (!is_op(")")) expect_op(",");
    }
  }

  ExprPtr call(ExprPtr callee) {
    auto c = make(Expr::Kind::kCall, callee->line);
    c->args.push_back(std::move(callee));
    call_args(*c);
    return c;
  }

  // name[(args)] after '|' or in {% filter %}; input may be null (filter blocks).
  ExprPtr filter_call(ExprPtr input) {
    auto f = make(Expr::Kind::kFilter, cur().line);
    f->name = expect_identifier();
    while (accept_op(".")) f->name += "." + expect_identifier();
    f->args.push_back(std::move(input));
    if (is_op("(")) call_args(*f);
    return f;
  }

  bool starts_primary() const {
    const Token& t = cur();
    if (t.type == TT::kString || t.type == TT::kInt || t.type == TT::kFloat) return true;
    if (t.type == TT::kOp) return t.text == "(" || t.text == "[" || t.text == "{" || t.text == "-";
    if (t.type == TT::kName)
      return t.text != "else" && t.text != "or" && t.text != "and" && t.text != "is" &&
             t.text != "in" && t.text != "not" && t.text != "if";
    return false;
  }

  ExprPtr filters_and_tests(ExprPtr e) {
    for (;;) {
      if (accept_op("|")) {
        e = filter_call(std::move(e));
      } else if (is_name("is")) {
        next();
        auto t = make(Expr::Kind::kTest, e->line);
        t->negated = accept_name("not");
        // Tests named like keywords or literals ('is none', 'is true') are plain names here.
        if (cur().type != TT::kName) fail("a test name");
        t->name = cur().text;
        next();
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          call_args(*t);
        } else if (starts_primary()) {
          t->args.push_back(unary(false));  // 'is divisibleby 3', 'is sameas false'
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = call(std::move(e));
      } else {
        return e;
      }
    }
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
};

}  // namespace

Program parse(std::string_view source, const LexOptions& options) {
  return Parser(tokenize(source, options)).program();
}

}  // namespace fdpp::jinja

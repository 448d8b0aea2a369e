// The syntax tree of a parsed template: expressions (Expr) and statements (Stmt). Plain data;
// parser.cpp builds it, interpreter.cpp walks it.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace fdpp::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,   // literal
    kName,      // name
    kList,      // args: the elements (list and tuple literals)
    kDict,      // args: key0, value0, key1, value1, ...
    kGetAttr,   // args[0].name
    kGetItem,   // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null = omitted)
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs)
    kTest,      // args[0] is [not] name(args[1..], kwargs); negated
    kUnary,     // name in {"-", "+", "not"}, args[0]
    kBinary,    // args[0] name args[1]: arithmetic, ~, comparisons, in, not in
    kAnd,       // args[0] and args[1] (short-circuit, returns an operand)
    kOr,        // args[0] or args[1]
    kCond,      // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind = Kind::kLiteral;
  int line = 0;
  Value literal;
  std::string name;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // branches: (condition, body)...; a null condition is the else branch
    kFor,       // for targets in expr [if condition]: body [else else_body]
    kSet,       // set targets[0] (or targets[0].attr) = expr
    kSetBlock,  // set targets[0] %} body {% endset
    kMacro,     // macro name(params) body
    kFilterBlock,  // filter expr (a kFilter whose args[0] is null) body
    kBreak,
    kContinue,
    kBlock,     // a body rendered as is ({% generation %})
  };
  Kind kind = Kind::kText;
  int line = 0;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  std::vector<std::pair<ExprPtr, Body>> branches;
  std::vector<std::string> targets;
  std::string attr;
  std::string name;
  std::vector<std::pair<std::string, ExprPtr>> params;  // macro parameters and their defaults
  Body body;
  Body else_body;
};

struct Program {
  Body body;
};

}  // namespace fdpp::jinja

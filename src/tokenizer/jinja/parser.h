// Jinja parser: tokens -> Program. Statements: if/elif/else, for (loop filter, else), set (also
// ns.attr and block set), macro, filter blocks, break/continue, generation (HF's marker, rendered
// as is). Expressions follow Jinja2's precedence: conditional < or < and < not < comparisons
// (==, !=, <, >, <=, >=, in, not in) < + - < ~ < * / // % < ** < unary - + < postfix
// (.attr, [index], [a:b:c], calls) with filters (|f) and tests (is [not] t) binding tightest.
#pragma once

#include <string_view>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/lexer.h"

namespace fdpp::jinja {

// Throws fdpp::Error (kParse) naming the line and what was expected.
Program parse(std::string_view source, const LexOptions& options = {});

}  // namespace fdpp::jinja

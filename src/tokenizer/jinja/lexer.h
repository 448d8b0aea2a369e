// Jinja lexer: template source -> a flat token stream. Text between tags becomes kText tokens
// with whitespace control already applied ('-' on a tag strips the whitespace beside it;
// trim_blocks drops the first newline after a block or comment tag; lstrip_blocks strips the
// spaces and tabs before a block or comment tag at the start of a line; '+' turns either off).
// Comments are dropped; {% raw %}...{% endraw %} becomes text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fdpp::jinja {

struct Token {
  enum class Type {
    kText,       // literal template text
    kExprOpen,   // {{
    kExprClose,  // }}
    kStmtOpen,   // {%
    kStmtClose,  // %}
    kName,       // identifiers and keywords (if, for, in, not, and, or, is, ...)
    kString,     // text: the unescaped value
    kInt,
    kFloat,
    kOp,         // + - * / // % ** ~ == != < > <= >= = ( ) [ ] { } , . : |
    kEnd,
  };
  Type type = Type::kEnd;
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

struct LexOptions {
  bool trim_blocks = true;    // what Hugging Face's apply_chat_template uses
  bool lstrip_blocks = true;
};

// Throws fdpp::Error (kParse) with the line number on an unterminated tag, string or comment.
std::vector<Token> tokenize(std::string_view source, const LexOptions& options = {});

}  // namespace fdpp::jinja

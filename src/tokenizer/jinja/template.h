// jinja::Template: the Jinja subset that chat templates (Llama-2/3, Mistral, Qwen2, ...) use, with
// Hugging Face's environment: trim_blocks and lstrip_blocks on, no autoescape, loop controls
// (break/continue), raise_exception(), strftime_now(), tojson without key sorting or HTML escaping.
//
//   jinja::Template t("{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}");
//   std::string text = t.render(vars);  // vars: a Dict of the template's variables
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "fdpp/status.h"
#include "tokenizer/jinja/lexer.h"
#include "tokenizer/jinja/value.h"

namespace fdpp::jinja {

struct Program;

// What raise_exception('...') throws: the template's own message, code kInvalidArgument.
class RaisedError : public Error {
 public:
  explicit RaisedError(const std::string& message) : Error(ErrorCode::kInvalidArgument, message) {}
};

class Template {
 public:
  // Parses now; throws fdpp::Error (kParse) with the line on a syntax error.
  explicit Template(std::string_view source, const LexOptions& options = {});
  Template(const Template&) = default;
  Template& operator=(const Template&) = default;
  ~Template();

  // Renders with these variables (plus the built-in globals). Thread-safe: the parsed program
  // is shared and read-only. Throws RaisedError for raise_exception(), fdpp::Error
  // (kInvalidArgument, with the line) for other failures: a bad operand, an unknown filter.
  std::string render(const Dict& variables) const;

 private:
  std::shared_ptr<const Program> program_;
};

}  // namespace fdpp::jinja

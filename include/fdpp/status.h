// Errors: every failure a user can cause is reported as fdpp::Error with a message naming the
// problem (file, field, expected vs found). Kernel launchers return Status instead of throwing.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace fdpp {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // a bad value from the user (CLI flag, request field)
  kNotFound,         // a file, tensor or key that should exist does not
  kParse,            // malformed file content (JSON, safetensors header)
  kUnsupported,      // well-formed but not implemented (model_type, dtype, tokenizer model)
  kOutOfRange,       // a length or offset past its limit (prompt > context, offset > file)
  kOutOfMemory,      // host or device allocation failed
  kIo,               // the OS refused (open, mmap, read)
  kInternal,         // a bug: an invariant broke
};

const char* error_code_name(ErrorCode code);

class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }
  bool is_ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }
  Status status() const { return {code_, what()}; }

 private:
  ErrorCode code_;
};

// Throws Error when status is not ok.
void throw_if_error(const Status& status);

}  // namespace fdpp

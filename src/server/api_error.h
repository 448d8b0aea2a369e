// ApiError: an fdpp::Error that knows its HTTP status and the OpenAI error fields. Every error a
// client sees is one of these, written as {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <string>

#include "fdpp/status.h"

namespace fdpp::server {

class ApiError : public Error {
 public:
  // type: "invalid_request_error", "not_found_error", "rate_limit_error", "server_error", ...;
  // param: the request field at fault ("" = none); api_code: OpenAI's "code" ("" = null).
  ApiError(int http_status, std::string type, const std::string& message, std::string param = {},
           std::string api_code = {});

  int http_status() const { return http_status_; }
  const std::string& type() const { return type_; }
  const std::string& param() const { return param_; }
  const std::string& api_code() const { return api_code_; }

  // 400 invalid_request_error naming the field.
  static ApiError invalid(const std::string& message, std::string param = {}, std::string api_code = {});
  // The status an engine or tokenizer error maps to: 400 for what the request got wrong
  // (kInvalidArgument, kOutOfRange, kParse), 500 for the rest.
  static ApiError from_error(const Error& e, std::string param = {});

 private:
  int http_status_;
  std::string type_;
  std::string param_;
  std::string api_code_;
};

}  // namespace fdpp::server

#include "server/api_error.h"

namespace fdpp::server {
namespace {

ErrorCode code_for_status(int status) {
  if (status == 404) return ErrorCode::kNotFound;
  if (status >= 500) return ErrorCode::kInternal;
  return ErrorCode::kInvalidArgument;
}

}  // namespace

ApiError::ApiError(int http_status, std::string type, const std::string& message, std::string param,
                   std::string api_code)
    : Error(code_for_status(http_status), message),
      http_status_(http_status),
      type_(std::move(type)),
      param_(std::move(param)),
      api_code_(std::move(api_code)) {}

ApiError ApiError::invalid(const std::string& message, std::string param, std::string api_code) {
  return ApiError(400, "invalid_request_error", message, std::move(param), std::move(api_code));
}

ApiError ApiError::from_error(const Error& e, std::string param) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kOutOfRange:
    case ErrorCode::kParse:
    case ErrorCode::kUnsupported: return invalid(e.what(), std::move(param));
    case ErrorCode::kNotFound: return ApiError(404, "not_found_error", e.what(), std::move(param));
    default: return ApiError(500, "server_error", e.what());
  }
}

}  // namespace fdpp::server

// OpenAI response bodies: completion and chat completion objects, their streamed chunks as
// server-sent events ("data: {...}\n\n", ending with "data: [DONE]\n\n"), errors, the model list.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "server/api_error.h"

namespace fdpp::server {

// What every object of one response shares.
struct ResponseMeta {
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// A fresh id: prefix + 24 random hex digits.
std::string new_response_id(const std::string& prefix);
int64_t unix_now();

std::string error_body(const ApiError& e);
nlohmann::ordered_json usage_json(const Usage& u);

// finish_reason: "stop", "length", or "" for none (null in JSON).
std::string completion_body(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                            const Usage& u);
std::string chat_body(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                      const Usage& u);

// One SSE event each. include_usage: OpenAI then sends "usage": null in every chunk and one last
// chunk with empty choices and the usage.
std::string completion_chunk(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                             bool include_usage);
// first: the chunk that opens the message (delta with role "assistant").
std::string chat_chunk(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                       bool first, bool include_usage);
std::string usage_chunk(const ResponseMeta& m, bool chat, const Usage& u);
std::string sse_done();
std::string sse_error(const ApiError& e);  // an error event mid-stream

std::string models_body(const std::string& model, int64_t created, int64_t max_model_len);
std::string model_body(const std::string& model, int64_t created, int64_t max_model_len);

}  // namespace fdpp::server

// Parsing and validating the JSON bodies of POST /v1/completions and /v1/chat/completions into
// ApiRequest. Everything that can be checked without the tokenizer is checked here; each problem
// throws ApiError naming the field (400; 404 for an unknown model). Fields the API defines but
// fdpp does not implement (n > 1, logprobs, tools, ...) are refused with 400 rather than ignored;
// unknown fields are ignored.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fdpp/sampling.h"

namespace fdpp::server {

struct ApiRequest {
  enum class Kind { kCompletion, kChat };
  Kind kind = Kind::kCompletion;

  // kCompletion: the prompt as text, or as token ids (prompt_is_ids).
  std::string prompt;
  std::vector<int32_t> prompt_ids;
  bool prompt_is_ids = false;
  bool echo = false;                       // prepend the prompt to the returned text

  // kChat: messages with content flattened to a string (text parts joined).
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  bool add_generation_prompt = true;       // extension (vLLM): end with the assistant header

  std::optional<int32_t> max_tokens;       // max_tokens or max_completion_tokens; none: default
  SamplingParams sampling;                 // OpenAI defaults: temperature 1, top_p 1
  std::vector<std::string> stop;
  bool ignore_eos = false;                 // extension (vLLM)
  bool stream = false;
  bool include_usage = false;              // stream_options.include_usage
};

// Throws ApiError. served_model: the name GET /v1/models reports; a "model" field naming
// anything else is a 404 (absent or empty: the served model).
ApiRequest parse_completion_request(std::string_view body, const std::string& served_model);
ApiRequest parse_chat_request(std::string_view body, const std::string& served_model);

// Byte offset of the first byte that is not part of well-formed UTF-8 (overlong forms,
// surrogates and code points past U+10FFFF are ill-formed), or nullopt when all is valid.
std::optional<size_t> find_invalid_utf8(std::string_view bytes);

}  // namespace fdpp::server

#include "server/openai_format.h"

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <random>

namespace fdpp::server {
namespace {

using Json = nlohmann::ordered_json;

// dump() that replaces invalid UTF-8 rather than throwing (generated text is valid UTF-8 by
// construction; this is a second line of defence).
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json finish_json(const std::string& finish_reason) {
  return finish_reason.empty() ? Json(nullptr) : Json(finish_reason);
}

Json header(const ResponseMeta& m, const char* object) {
  Json j;
  j["id"] = m.id;
  j["object"] = object;
  j["created"] = m.created;
  j["model"] = m.model;
  return j;
}

std::string sse(const Json& j) { return "data: " + dump(j) + "\n\n"; }

Json model_json(const std::string& model, int64_t created, int64_t max_model_len) {
  Json j;
  j["id"] = model;
  j["object"] = "model";
  j["created"] = created;
  j["owned_by"] = "fdpp";
  j["max_model_len"] = max_model_len;
  return j;
}

}  // namespace

std::string new_response_id(const std::string& prefix) {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string error_body(const ApiError& e) {
  Json err;
  err["message"] = e.what();
  err["type"] = e.type();
  err["param"] = e.param().empty() ? Json(nullptr) : Json(e.param());
  err["code"] = e.api_code().empty() ? Json(nullptr) : Json(e.api_code());
  Json j;
  j["error"] = std::move(err);
  return dump(j);
}

Json usage_json(const Usage& u) {
  Json j;
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  return j;
}

std::string completion_body(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                            const Usage& u) {
  Json j = header(m, "text_completion");
  Json choice;
  choice["index"] = 0;
  choice["text"] = text;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish_reason);
  j["choices"] = Json::array({std::move(choice)});
  j["usage"] = usage_json(u);
  return dump(j);
}

std::string chat_body(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                      const Usage& u) {
  Json j = header(m, "chat.completion");
  Json message;
  message["role"] = "assistant";
  message["content"] = text;
  Json choice;
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish_reason);
  j["choices"] = Json::array({std::move(choice)});
  j["usage"] = usage_json(u);
  return dump(j);
}

std::string completion_chunk(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                             bool include_usage) {
  Json j = header(m, "text_completion");
  Json choice;
  choice["index"] = 0;
  choice["text"] = text;
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish_reason);
  j["choices"] = Json::array({std::move(choice)});
  if (include_usage) j["usage"] = nullptr;
  return sse(j);
}

std::string chat_chunk(const ResponseMeta& m, const std::string& text, const std::string& finish_reason,
                       bool first, bool include_usage) {
  Json j = header(m, "chat.completion.chunk");
  Json delta = Json::object();
  if (first) delta["role"] = "assistant";
  if (first || !text.empty()) delta["content"] = text;
  Json choice;
  choice["index"] = 0;
  choice["delta"] = std::move(delta);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_json(finish_reason);
  j["choices"] = Json::array({std::move(choice)});
  if (include_usage) j["usage"] = nullptr;
  return sse(j);
}

std::string usage_chunk(const ResponseMeta& m, bool chat, const Usage& u) {
  Json j = header(m, chat ? "chat.completion.chunk" : "text_completion");
  j["choices"] = Json::array();
  j["usage"] = usage_json(u);
  return sse(j);
}

std::string sse_done() { return "data: [DONE]\n\n"; }

std::string sse_error(const ApiError& e) { return "data: " + error_body(e) + "\n\n"; }

std::string models_body(const std::string& model, int64_t created, int64_t max_model_len) {
  Json j;
  j["object"] = "list";
  j["data"] = Json::array({model_json(model, created, max_model_len)});
  return dump(j);
}

std::string model_body(const std::string& model, int64_t created, int64_t max_model_len) {
  return dump(model_json(model, created, max_model_len));
}

}  // namespace fdpp::server

// Field by field, in the order the OpenAI reference lists them. Limits: temperature [0, 2],
// top_p (0, 1], stop at most 16 non-empty strings, n = 1.
#include "server/request_parser.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "server/api_error.h"

namespace fdpp::server {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxStopStrings = 16;

std::string json_type(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    case Json::value_t::string: return "a string";
    case Json::value_t::array: return "an array";
    case Json::value_t::object: return "an object";
    default: return "an unknown type";
  }
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const Json& found) {
  throw ApiError::invalid(fmt::format("'{}' must be {}, found {}", field, expected, json_type(found)), field,
                          "invalid_type");
}

// The value of `field`, or nullptr when absent or null (null means "default" in the API).
const Json* field_of(const Json& body, const char* field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<bool> get_bool(const Json& body, const char* field) {
  const Json* v = field_of(body, field);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(field, "a boolean", *v);
  return v->get<bool>();
}

std::optional<double> get_number(const Json& body, const char* field) {
  const Json* v = field_of(body, field);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(field, "a number", *v);
  return v->get<double>();
}

std::optional<int64_t> get_integer(const Json& body, const char* field) {
  const Json* v = field_of(body, field);
  if (!v) return std::nullopt;
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::floor(d) == d && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  if (!v->is_number_integer() && !v->is_number_unsigned()) wrong_type(field, "an integer", *v);
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    throw ApiError::invalid(fmt::format("'{}' is too large", field), field, "invalid_value");
  return v->get<int64_t>();
}

void check_range(const char* field, double value, double lo, double hi, bool lo_open) {
  if (!std::isfinite(value) || value < lo || value > hi || (lo_open && value == lo))
    throw ApiError::invalid(fmt::format("'{}' must be in {}{}, {}], found {}", field, lo_open ? "(" : "[", lo,
                                        hi, value),
                            field, "invalid_value");
}

[[noreturn]] void unsupported(const std::string& field, const std::string& what) {
  throw ApiError::invalid(fmt::format("'{}': {} is not supported by this server", field, what), field,
                          "unsupported_value");
}

Json parse_body(std::string_view body) {
  if (auto bad = find_invalid_utf8(body))
    throw ApiError::invalid(fmt::format("the request body is not valid UTF-8 (byte offset {})", *bad), "",
                            "invalid_utf8");
  Json j;
  try {
    j = Json::parse(body);
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at ...".
    std::string detail = e.what();
    if (auto p = detail.find("] "); p != std::string::npos) detail = detail.substr(p + 2);
    throw ApiError::invalid(fmt::format("the request body is not valid JSON: {}", detail), "", "invalid_json");
  }
  if (!j.is_object())
    throw ApiError::invalid(fmt::format("the request body must be a JSON object, found {}", json_type(j)), "",
                            "invalid_json");
  return j;
}

void check_model(const Json& body, const std::string& served_model) {
  const Json* m = field_of(body, "model");
  if (!m) return;
  if (!m->is_string()) wrong_type("model", "a string", *m);
  const std::string name = m->get<std::string>();
  if (!name.empty() && name != served_model)
    throw ApiError(404, "invalid_request_error",
                   fmt::format("The model '{}' does not exist; this server serves '{}'", name, served_model),
                   "model", "model_not_found");
}

// Sampling, limits, stop, streaming: the fields both endpoints share.
void parse_common(const Json& body, ApiRequest& r) {
  std::optional<int64_t> max_tokens = get_integer(body, "max_tokens");
  const char* max_field = "max_tokens";
  if (auto m = get_integer(body, "max_completion_tokens")) {
    max_tokens = m;
    max_field = "max_completion_tokens";
  }
  if (max_tokens) {
    if (*max_tokens <= 0)
      throw ApiError::invalid(fmt::format("'{}' must be at least 1, found {}", max_field, *max_tokens), max_field,
                              "invalid_value");
    r.max_tokens = static_cast<int32_t>(std::min<int64_t>(*max_tokens, std::numeric_limits<int32_t>::max()));
  }

  r.sampling.temperature = 1.0f;
  r.sampling.top_p = 1.0f;
  if (auto t = get_number(body, "temperature")) {
    check_range("temperature", *t, 0.0, 2.0, false);
    r.sampling.temperature = static_cast<float>(*t);
  }
  if (auto p = get_number(body, "top_p")) {
    check_range("top_p", *p, 0.0, 1.0, true);
    r.sampling.top_p = static_cast<float>(*p);
  }
  if (auto k = get_integer(body, "top_k")) {  // extension; -1 or 0 = off
    if (*k < -1) throw ApiError::invalid(fmt::format("'top_k' must be -1, 0 (off) or positive, found {}", *k), "top_k", "invalid_value");
    r.sampling.top_k = *k < 0 ? 0 : static_cast<int32_t>(std::min<int64_t>(*k, INT32_MAX));
  }
  if (auto p = get_number(body, "min_p")) {  // extension
    check_range("min_p", *p, 0.0, 1.0, false);
    r.sampling.min_p = static_cast<float>(*p);
  }
  if (auto p = get_number(body, "repetition_penalty")) {  // extension
    if (!std::isfinite(*p) || *p <= 0)
      throw ApiError::invalid(fmt::format("'repetition_penalty' must be positive, found {}", *p),
                              "repetition_penalty", "invalid_value");
    r.sampling.repetition_penalty = static_cast<float>(*p);
  }
  for (const char* penalty : {"frequency_penalty", "presence_penalty"})
    if (auto p = get_number(body, penalty)) {
      check_range(penalty, *p, -2.0, 2.0, false);
      if (*p != 0.0) unsupported(penalty, "a non-zero value");
    }
  if (const Json* s = field_of(body, "seed")) {
    if (!s->is_number_integer() && !s->is_number_unsigned()) wrong_type("seed", "an integer", *s);
    r.sampling.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
  }

  if (const Json* s = field_of(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > kMaxStopStrings)
        throw ApiError::invalid(fmt::format("'stop' holds at most {} strings, found {}", kMaxStopStrings, s->size()),
                                "stop", "invalid_value");
      for (const Json& e : *s) {
        if (!e.is_string()) wrong_type("stop", "a string or an array of strings", e);
        r.stop.push_back(e.get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *s);
    }
    for (const auto& st : r.stop)
      if (st.empty()) throw ApiError::invalid("'stop' strings must not be empty", "stop", "invalid_value");
  }
  if (auto b = get_bool(body, "ignore_eos")) r.ignore_eos = *b;

  if (auto n = get_integer(body, "n"); n && *n != 1) {
    if (*n < 1) throw ApiError::invalid(fmt::format("'n' must be at least 1, found {}", *n), "n", "invalid_value");
    unsupported("n", fmt::format("n = {} (only 1 choice per request)", *n));
  }
  if (const Json* lb = field_of(body, "logit_bias"); lb && !(lb->is_object() && lb->empty()))
    unsupported("logit_bias", "a logit bias");
  if (const Json* u = field_of(body, "user"); u && !u->is_string()) wrong_type("user", "a string", *u);

  r.stream = get_bool(body, "stream").value_or(false);
  if (const Json* so = field_of(body, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    if (!r.stream)
      throw ApiError::invalid("'stream_options' is only allowed when 'stream' is true", "stream_options",
                              "invalid_value");
    r.include_usage = get_bool(*so, "include_usage").value_or(false);
  }
}

std::vector<int32_t> token_ids(const Json& arr, const char* field) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (const Json& t : arr) {
    if (!t.is_number_integer() && !t.is_number_unsigned()) wrong_type(field, "a string or an array of token ids", t);
    const int64_t id = t.get<int64_t>();
    if (id < 0 || id > INT32_MAX)
      throw ApiError::invalid(fmt::format("'{}' holds token id {}, outside the vocabulary", field, id), field,
                              "invalid_value");
    ids.push_back(static_cast<int32_t>(id));
  }
  return ids;
}

void parse_prompt(const Json& body, ApiRequest& r) {
  const Json* p = field_of(body, "prompt");
  if (!p) throw ApiError::invalid("'prompt' is required", "prompt", "missing_required_parameter");
  const char* expected = "a string, an array of token ids, or an array holding one of those";
  if (p->is_string()) {
    r.prompt = p->get<std::string>();
    return;
  }
  if (!p->is_array()) wrong_type("prompt", expected, *p);
  if (p->empty()) throw ApiError::invalid("'prompt' must not be an empty array", "prompt", "invalid_value");
  const Json& first = (*p)[0];
  if (first.is_number()) {
    r.prompt_ids = token_ids(*p, "prompt");
    r.prompt_is_ids = true;
    return;
  }
  if (p->size() > 1) unsupported("prompt", "a batch of several prompts (send one request per prompt)");
  if (first.is_string()) {
    r.prompt = first.get<std::string>();
  } else if (first.is_array()) {
    r.prompt_ids = token_ids(first, "prompt");
    r.prompt_is_ids = true;
    if (r.prompt_ids.empty()) throw ApiError::invalid("'prompt' holds an empty token list", "prompt", "invalid_value");
  } else {
    wrong_type("prompt", expected, first);
  }
}

// Content: a string, null (assistant turns with tool calls), or text parts joined.
std::string flatten_content(const Json& content, const std::string& field) {
  if (content.is_null()) return {};
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) wrong_type(field, "a string or an array of content parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string pf = fmt::format("{}[{}]", field, i);
    if (!part.is_object()) wrong_type(pf, "a content part object", part);
    const Json* type = field_of(part, "type");
    if (!type || !type->is_string()) throw ApiError::invalid(fmt::format("'{}.type' is required", pf), pf + ".type");
    if (type->get<std::string>() != "text")
      unsupported(pf + ".type", fmt::format("content of type '{}' (text only)", type->get<std::string>()));
    const Json* t = field_of(part, "text");
    if (!t || !t->is_string()) throw ApiError::invalid(fmt::format("'{}.text' must be a string", pf), pf + ".text");
    text += t->get<std::string>();
  }
  return text;
}

void parse_messages(const Json& body, ApiRequest& r) {
  const Json* m = field_of(body, "messages");
  if (!m) throw ApiError::invalid("'messages' is required", "messages", "missing_required_parameter");
  if (!m->is_array()) wrong_type("messages", "an array", *m);
  if (m->empty()) throw ApiError::invalid("'messages' must hold at least one message", "messages", "invalid_value");
  for (size_t i = 0; i < m->size(); ++i) {
    const Json& msg = (*m)[i];
    const std::string f = fmt::format("messages[{}]", i);
    if (!msg.is_object()) wrong_type(f, "an object", msg);
    const Json* role = field_of(msg, "role");
    if (!role) throw ApiError::invalid(fmt::format("'{}.role' is required", f), f + ".role", "missing_required_parameter");
    if (!role->is_string()) wrong_type(f + ".role", "a string", *role);
    const std::string rs = role->get<std::string>();
    if (rs != "system" && rs != "user" && rs != "assistant" && rs != "tool" && rs != "developer" && rs != "function")
      throw ApiError::invalid(fmt::format("'{}.role' must be one of system, developer, user, assistant, tool; "
                                          "found '{}'", f, rs), f + ".role", "invalid_value");
    auto c = msg.find("content");
    const bool may_omit = rs == "assistant";  // an assistant turn may carry only tool_calls
    if (c == msg.end() && !may_omit)
      throw ApiError::invalid(fmt::format("'{}.content' is required", f), f + ".content", "missing_required_parameter");
    Json out = msg;
    out["content"] = c == msg.end() ? std::string() : flatten_content(*c, f + ".content");
    r.messages.push_back(std::move(out));
  }
  if (auto g = get_bool(body, "add_generation_prompt")) r.add_generation_prompt = *g;
  if (const Json* t = field_of(body, "tools"); t && !(t->is_array() && t->empty()))
    unsupported("tools", "tool calling");
  if (const Json* t = field_of(body, "tool_choice"); t && !(t->is_string() && t->get<std::string>() == "none"))
    unsupported("tool_choice", "tool calling");
  if (const Json* rf = field_of(body, "response_format")) {
    if (!rf->is_object()) wrong_type("response_format", "an object", *rf);
    const Json* type = field_of(*rf, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "text")
      unsupported("response_format", "a response format other than text");
  }
  if (auto lp = get_bool(body, "logprobs"); lp && *lp) unsupported("logprobs", "log probabilities");
  if (auto tl = get_integer(body, "top_logprobs"); tl && *tl > 0) unsupported("top_logprobs", "log probabilities");
}

}  // namespace

ApiRequest parse_completion_request(std::string_view body, const std::string& served_model) {
  const Json j = parse_body(body);
  ApiRequest r;
  r.kind = ApiRequest::Kind::kCompletion;
  check_model(j, served_model);
  parse_prompt(j, r);
  parse_common(j, r);
  r.echo = get_bool(j, "echo").value_or(false);
  if (auto lp = get_integer(j, "logprobs"); lp && *lp > 0) unsupported("logprobs", "log probabilities");
  if (auto b = get_integer(j, "best_of"); b && *b != 1) unsupported("best_of", "best_of other than 1");
  if (const Json* s = field_of(j, "suffix")) {
    if (!s->is_string()) wrong_type("suffix", "a string", *s);
    if (!s->get<std::string>().empty()) unsupported("suffix", "a suffix (insertion)");
  }
  return r;
}

ApiRequest parse_chat_request(std::string_view body, const std::string& served_model) {
  const Json j = parse_body(body);
  ApiRequest r;
  r.kind = ApiRequest::Kind::kChat;
  check_model(j, served_model);
  parse_messages(j, r);
  parse_common(j, r);
  return r;
}

std::optional<size_t> find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, C0/C1 overlong lead, or F5..FF
    }
    if (i + n > s.size()) return i;
    for (size_t k = 1; k < n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += n;
  }
  return std::nullopt;
}

}  // namespace fdpp::server

// The server's parts without HTTP: request parsing and validation, UTF-8 checking, the OpenAI
// JSON/SSE formats and the Prometheus text. (tests/server/tests/*.test.mjs test the whole server.)
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/metrics.h"
#include "server/openai_format.h"
#include "server/request_parser.h"

namespace fdpp::server {
namespace {

const std::string kModel = "m";

ApiError error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "expected an ApiError";
  return ApiError(0, "", "");
}

TEST(ServerRequest, CompletionDefaultsFollowOpenAI) {
  const ApiRequest r = parse_completion_request(R"({"prompt": "Hi"})", kModel);
  EXPECT_EQ(r.kind, ApiRequest::Kind::kCompletion);
  EXPECT_EQ(r.prompt, "Hi");
  EXPECT_FALSE(r.prompt_is_ids);
  EXPECT_FALSE(r.max_tokens.has_value());
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FALSE(r.sampling.seed.has_value());
  EXPECT_FALSE(r.stream);
  EXPECT_TRUE(r.stop.empty());
}

TEST(ServerRequest, CompletionFields) {
  const ApiRequest r = parse_completion_request(
      R"({"model": "m", "prompt": [[1, 2, 3]], "max_tokens": 5, "temperature": 0, "top_p": 0.5, "seed": 7,
          "stop": ["a", "b"], "stream": true, "stream_options": {"include_usage": true}, "echo": true,
          "top_k": -1, "min_p": 0.1, "ignore_eos": true, "n": 1, "user": "u", "presence_penalty": 0})",
      kModel);
  EXPECT_TRUE(r.prompt_is_ids);
  EXPECT_EQ(r.prompt_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(*r.max_tokens, 5);
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.sampling.top_p, 0.5f);
  EXPECT_EQ(*r.sampling.seed, 7u);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.stream && r.include_usage && r.echo && r.ignore_eos);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
}

TEST(ServerRequest, ChatMessagesAreFlattened) {
  const ApiRequest r = parse_chat_request(
      R"({"messages": [{"role": "system", "content": "S"},
                       {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                       {"role": "assistant", "content": null, "tool_calls": []}],
          "max_completion_tokens": 9, "add_generation_prompt": false})",
      kModel);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[1]["content"], "ab");
  EXPECT_EQ(r.messages[2]["content"], "");
  EXPECT_TRUE(r.messages[2].contains("tool_calls"));
  EXPECT_EQ(*r.max_tokens, 9);
  EXPECT_FALSE(r.add_generation_prompt);
}

TEST(ServerRequest, ErrorsNameStatusAndField) {
  struct Case {
    const char* body;
    bool chat;
    int status;
    const char* param;
  };
  const Case cases[] = {
      {R"({"prompt": "x",)", false, 400, ""},
      {R"("just a string")", false, 400, ""},
      {R"({"prompt": "x", "model": "other"})", false, 404, "model"},
      {R"({"prompt": "x", "max_tokens": 0})", false, 400, "max_tokens"},
      {R"({"prompt": "x", "max_tokens": "3"})", false, 400, "max_tokens"},
      {R"({"prompt": "x", "temperature": 3})", false, 400, "temperature"},
      {R"({"prompt": "x", "top_p": 0})", false, 400, "top_p"},
      {R"({"prompt": "x", "n": 2})", false, 400, "n"},
      {R"({"prompt": "x", "stop": [1]})", false, 400, "stop"},
      {R"({"prompt": "x", "frequency_penalty": 0.5})", false, 400, "frequency_penalty"},
      {R"({"prompt": "x", "stream_options": {}})", false, 400, "stream_options"},
      {R"({"prompt": ["a", "b"]})", false, 400, "prompt"},
      {R"({"prompt": [1, -2]})", false, 400, "prompt"},
      {R"({})", false, 400, "prompt"},
      {R"({"messages": []})", true, 400, "messages"},
      {R"({"messages": [{"role": "user"}]})", true, 400, "messages[0].content"},
      {R"({"messages": [{"role": "robot", "content": "x"}]})", true, 400, "messages[0].role"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true, 400, "messages[0].content[0].type"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{}]})", true, 400, "tools"},
  };
  for (const Case& c : cases) {
    const ApiError e = error_of([&] {
      if (c.chat) parse_chat_request(c.body, kModel);
      else parse_completion_request(c.body, kModel);
    });
    EXPECT_EQ(e.http_status(), c.status) << c.body << ": " << e.what();
    EXPECT_EQ(e.param(), c.param) << c.body << ": " << e.what();
  }
}

TEST(ServerRequest, Utf8Validation) {
  EXPECT_FALSE(find_invalid_utf8("plain ascii, é, 你好, 😀").has_value());
  EXPECT_EQ(find_invalid_utf8("ab\xff"), 2u);
  EXPECT_EQ(find_invalid_utf8("\xc3"), 0u);              // truncated
  EXPECT_EQ(find_invalid_utf8("a\xc0\xaf"), 1u);         // overlong '/'
  EXPECT_EQ(find_invalid_utf8("\xe0\x80\xaf"), 0u);      // overlong, 3 bytes
  EXPECT_EQ(find_invalid_utf8("x\xed\xa0\x80"), 1u);     // UTF-16 surrogate
  EXPECT_EQ(find_invalid_utf8("\xf4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("\x80"), 0u);              // lone continuation byte
  const ApiError e = error_of([] { parse_completion_request("{\"prompt\": \"\xff\"}", kModel); });
  EXPECT_EQ(e.api_code(), "invalid_utf8");
}

TEST(ServerFormat, ErrorBodyAndChunks) {
  const auto err = nlohmann::json::parse(error_body(ApiError::invalid("bad", "temperature", "invalid_value")));
  EXPECT_EQ(err["error"]["message"], "bad");
  EXPECT_EQ(err["error"]["type"], "invalid_request_error");
  EXPECT_EQ(err["error"]["param"], "temperature");
  EXPECT_EQ(err["error"]["code"], "invalid_value");
  EXPECT_TRUE(nlohmann::json::parse(error_body(ApiError(500, "server_error", "x")))["error"]["param"].is_null());

  const ResponseMeta meta{"chatcmpl-1", 123, "m"};
  const std::string first = chat_chunk(meta, "", "", true, false);
  ASSERT_TRUE(first.starts_with("data: ") && first.ends_with("\n\n"));
  const auto j = nlohmann::json::parse(first.substr(6));
  EXPECT_EQ(j["object"], "chat.completion.chunk");
  EXPECT_EQ(j["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(j["choices"][0]["finish_reason"].is_null());
  const auto last = nlohmann::json::parse(chat_chunk(meta, "", "stop", false, true).substr(6));
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(last["usage"].is_null());
  const auto usage = nlohmann::json::parse(usage_chunk(meta, true, {3, 4}).substr(6));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 7);
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  const auto body = nlohmann::json::parse(completion_body({"cmpl-1", 1, "m"}, "hi", "length", {2, 1}));
  EXPECT_EQ(body["choices"][0]["text"], "hi");
  EXPECT_EQ(body["usage"]["prompt_tokens"], 2);
}

TEST(ServerMetrics, PrometheusText) {
  Metrics m;
  m.http_request("/v1/completions", 200);
  m.http_request("/v1/completions", 200);
  m.http_request("/v1/completions", 429);
  m.time_to_first_token(0.003);
  m.time_to_first_token(0.2);
  m.generation_tokens(5);
  m.request_finished("cancelled");
  EngineLoad load;
  load.kv_blocks_used = 3;
  load.kv_blocks_total = 12;
  load.kv_block_size = 16;
  load.steps_queued_ahead = 7;
  const std::string text = m.render(load);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("fdpp_http_requests_total{route=\"/v1/completions\",code=\"200\"} 2"));
  EXPECT_TRUE(has("fdpp_http_requests_total{route=\"/v1/completions\",code=\"429\"} 1"));
  EXPECT_TRUE(has("# TYPE fdpp_time_to_first_token_seconds histogram"));
  EXPECT_TRUE(has("fdpp_time_to_first_token_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_TRUE(has("fdpp_time_to_first_token_seconds_bucket{le=\"0.25\"} 2"));
  EXPECT_TRUE(has("fdpp_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(has("fdpp_time_to_first_token_seconds_count 2"));
  EXPECT_TRUE(has("fdpp_generation_tokens_total 5"));
  EXPECT_TRUE(has("fdpp_requests_finished_total{reason=\"cancelled\"} 1"));
  EXPECT_TRUE(has("fdpp_kv_cache_blocks_used 3"));
  EXPECT_TRUE(has("fdpp_kv_cache_usage_ratio 0.25"));
  EXPECT_TRUE(has("fdpp_softmax_fallback_rows_total 0"));
  EXPECT_TRUE(has("# TYPE fdpp_steps_queued_ahead_total counter"));
  EXPECT_TRUE(has("fdpp_steps_queued_ahead_total 7"));
}

}  // namespace
}  // namespace fdpp::server

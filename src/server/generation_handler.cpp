// POST /v1/completions and /v1/chat/completions: parse -> prompt tokens (chat template for chat)
// -> limits -> hand over to the engine thread -> wait for admission (400/429/503 answer here) ->
// either collect the whole text (JSON response) or stream server-sent events from a chunked
// content provider. A client that goes away mid-stream makes a write fail; the provider then
// stops and the request is cancelled, which frees its sequence and KV blocks.
#include <fmt/format.h>

#include "server/openai_format.h"
#include "server/request_parser.h"
#include "server/routes.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace fdpp::server {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(500);
constexpr auto kKeepAliveAfter = std::chrono::seconds(2);  // SSE comment while nothing happens

std::string finish_name(FinishReason f) {
  return f == FinishReason::kNone || f == FinishReason::kCancelled ? std::string() : finish_reason_name(f);
}

struct Prepared {
  GenerationRequest request;
  std::string echo_text;  // what echo: true prepends
};

Prepared prepare(const ApiRequest& r, const ServerState& st) {
  const Tokenizer& tok = st.engine.tokenizer();
  const bool chat = r.kind == ApiRequest::Kind::kChat;
  const char* prompt_field = chat ? "messages" : "prompt";
  Prepared p;
  std::vector<int32_t>& ids = p.request.prompt;
  try {
    if (chat) {
      const std::string text = st.chat_template.render(r.messages, r.add_generation_prompt);
      ids = tok.encode(text, /*add_special=*/false);  // the template wrote BOS if the model wants it
    } else if (r.prompt_is_ids) {
      ids = r.prompt_ids;
      const auto vocab = static_cast<int64_t>(tok.vocab_size());
      for (int32_t id : ids)
        if (id >= vocab)
          throw ApiError::invalid(fmt::format("'prompt' holds token id {}, outside the vocabulary [0, {})", id, vocab),
                                  "prompt", "invalid_value");
      if (r.echo) p.echo_text = tok.decode(ids);
    } else {
      ids = tok.encode(r.prompt);
      if (r.echo) p.echo_text = r.prompt;
    }
  } catch (const ApiError&) {
    throw;
  } catch (const jinja::RaisedError& e) {
    throw ApiError::invalid(fmt::format("the chat template rejected the messages: {}", e.what()), "messages",
                            "invalid_messages");
  } catch (const Error& e) {
    throw ApiError::invalid(e.what(), prompt_field);
  }

  const int64_t context = st.engine.max_context();
  const auto n = static_cast<int64_t>(ids.size());
  if (n == 0) throw ApiError::invalid("the prompt is empty (0 tokens)", prompt_field, "invalid_value");
  if (n >= context)
    throw ApiError::invalid(fmt::format("This model's maximum context length is {} tokens, and the prompt has {} "
                                        "tokens: no room is left to generate",
                                        context, n),
                            prompt_field, "context_length_exceeded");
  int64_t max_tokens = 0;
  if (r.max_tokens) {
    max_tokens = *r.max_tokens;
    if (n + max_tokens > context)
      throw ApiError::invalid(fmt::format("This model's maximum context length is {} tokens; the request needs {} "
                                          "({} in the prompt, {} to generate). Lower max_tokens to at most {}",
                                          context, n + max_tokens, n, max_tokens, context - n),
                              "max_tokens", "context_length_exceeded");
  } else if (chat) {
    const EngineLoad l = st.loop.load();
    const int64_t cache = l.kv_blocks_total * l.kv_block_size;
    max_tokens = std::max<int64_t>(1, std::min(context, cache > 0 ? cache : context) - n);
  } else {
    max_tokens = std::min<int64_t>(st.options.default_completion_tokens, context - n);
  }
  p.request.stop.max_tokens = static_cast<int32_t>(max_tokens);
  p.request.stop.stop_strings = r.stop;
  p.request.stop.ignore_eos = r.ignore_eos;
  p.request.sampling = r.sampling;
  return p;
}

// The final event's verdict: an error the client should see, or none.
std::optional<ApiError> failure_of(const RequestStream& s, FinishReason finish) {
  if (finish != FinishReason::kCancelled) return std::nullopt;
  if (auto e = s.error()) return e;
  return ApiError(503, "server_error", "the request was cancelled");
}

void respond_whole(httplib::Response& res, ServerState& st, const std::shared_ptr<RequestStream>& s,
                   const ResponseMeta& meta, bool chat, const std::string& echo_text) {
  std::string text = echo_text;
  Usage usage{s->prompt_tokens(), 0};
  FinishReason finish = FinishReason::kNone;
  std::vector<TokenEvent> events;
  for (bool more = true; more;) {
    events.clear();
    more = s->next(events, kPollInterval);
    for (const TokenEvent& ev : events) {
      text += ev.text;
      if (ev.token >= 0) ++usage.completion_tokens;
      if (ev.finish != FinishReason::kNone) finish = ev.finish;
    }
  }
  if (auto err = failure_of(*s, finish)) {
    send_error(res, *err, st);
    return;
  }
  res.set_content(chat ? chat_body(meta, text, finish_name(finish), usage)
                       : completion_body(meta, text, finish_name(finish), usage),
                  "application/json");
}

// State of one SSE response, shared by the content provider and its releaser.
struct SseState {
  std::shared_ptr<RequestStream> stream;
  ResponseMeta meta;
  bool chat = false;
  bool include_usage = false;
  std::string echo_text;
  bool opened = false;
  bool finished = false;  // the final event was written (or the stream ended)
  Usage usage;
  Clock::time_point last_write = Clock::now();
};

bool provide(SseState& st, httplib::DataSink& sink) {
  std::string out;
  if (!st.opened) {
    st.opened = true;
    if (st.chat) out += chat_chunk(st.meta, "", "", true, st.include_usage);
    else if (!st.echo_text.empty()) out += completion_chunk(st.meta, st.echo_text, "", st.include_usage);
  }
  std::vector<TokenEvent> events;
  const bool more = st.stream->next(events, kPollInterval);
  FinishReason finish = FinishReason::kNone;
  for (const TokenEvent& ev : events) {
    if (ev.token >= 0) ++st.usage.completion_tokens;
    if (!ev.text.empty())
      out += st.chat ? chat_chunk(st.meta, ev.text, "", false, st.include_usage)
                     : completion_chunk(st.meta, ev.text, "", st.include_usage);
    if (ev.finish != FinishReason::kNone) finish = ev.finish;
  }
  if (!more) {
    if (finish == FinishReason::kCancelled) {
      if (st.stream->cancelled()) return false;  // the client is gone; nobody to tell
      if (auto err = failure_of(*st.stream, finish)) out += sse_error(*err);
    } else {
      out += st.chat ? chat_chunk(st.meta, "", finish_name(finish), false, st.include_usage)
                     : completion_chunk(st.meta, "", finish_name(finish), st.include_usage);
      if (st.include_usage) out += usage_chunk(st.meta, st.chat, st.usage);
    }
    out += sse_done();
  } else if (out.empty() && Clock::now() - st.last_write > kKeepAliveAfter) {
    out = ": keep-alive\n\n";  // an SSE comment: keeps proxies open and finds departed clients
  }
  if (!out.empty()) {
    if (!sink.write(out.data(), out.size())) return false;
    st.last_write = Clock::now();
  }
  if (!more) {
    st.finished = true;
    sink.done();
  }
  return true;
}

void respond_stream(httplib::Response& res, ServerState& st, const std::shared_ptr<RequestStream>& s,
                    const ResponseMeta& meta, bool chat, bool include_usage, std::string echo_text) {
  auto sse = std::make_shared<SseState>();
  sse->stream = s;
  sse->meta = meta;
  sse->chat = chat;
  sse->include_usage = include_usage;
  sse->echo_text = std::move(echo_text);
  sse->usage.prompt_tokens = s->prompt_tokens();
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  EngineLoop& loop = st.loop;
  std::atomic<int>& in_flight = st.responses_in_flight;
  ++in_flight;
  res.set_chunked_content_provider(
      "text/event-stream", [sse](size_t, httplib::DataSink& sink) { return provide(*sse, sink); },
      [sse, &loop, &in_flight](bool) {
        // Called when the response ends for any reason; a stream that did not finish lost its
        // client (a failed write, a closed socket, server shutdown): free its sequence.
        if (!sse->finished) loop.cancel(sse->stream);
        --in_flight;
      });
}

}  // namespace

void handle_generation(const httplib::Request& req, httplib::Response& res, ServerState& st, bool chat) {
  const auto received = Clock::now();
  ++st.responses_in_flight;
  struct Done {
    std::atomic<int>& n;
    ~Done() { --n; }
  } done{st.responses_in_flight};
  try {
    const ApiRequest r = chat ? parse_chat_request(req.body, st.model_name)
                              : parse_completion_request(req.body, st.model_name);
    Prepared p = prepare(r, st);
    ResponseMeta meta{new_response_id(chat ? "chatcmpl-" : "cmpl-"), unix_now(), st.model_name};
    auto stream = st.loop.submit(std::move(p.request), received);
    if (auto rejected = stream->wait_admission()) throw *rejected;
    if (r.stream) respond_stream(res, st, stream, meta, chat, r.include_usage, std::move(p.echo_text));
    else respond_whole(res, st, stream, meta, chat, p.echo_text);
  } catch (const ApiError& e) {
    send_error(res, e, st);
  } catch (const Error& e) {
    send_error(res, ApiError::from_error(e), st);
  }
}

}  // namespace fdpp::server

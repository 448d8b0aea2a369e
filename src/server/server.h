// The OpenAI-compatible HTTP server (cpp-httplib): POST /v1/completions, /v1/chat/completions,
// GET /v1/models, /health, /metrics. One engine thread (EngineLoop) owns the Engine; HTTP worker
// threads parse, tokenize and stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fdpp {
class Engine;
class ChatTemplate;
}  // namespace fdpp

namespace fdpp::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (printed at start)
  std::string served_model_name;        // the model id clients name; default: the model folder's name
  size_t max_body_bytes = 4u << 20;     // larger request bodies get 413
  int http_threads = 0;                 // worker threads; 0: enough for every batch slot and queue place
  int retry_after_seconds = 1;          // Retry-After of a 429 (queue full)
  int default_completion_tokens = 16;   // /v1/completions without max_tokens (the OpenAI default)
};

// Serves until SIGINT or SIGTERM, then ends the requests in flight (their clients get an error
// or a truncated stream) and returns. Prints "fdpp serve: listening on http://HOST:PORT ..." to
// stdout once the socket is bound. Throws fdpp::Error when the address cannot be bound.
void run_server(Engine& engine, const ChatTemplate& chat_template, const ServerOptions& options);

}  // namespace fdpp::server

// The HTTP routes and what they share. register_routes() installs every endpoint, the JSON error
// handler (404, 413, ...) and the metrics logger on a cpp-httplib server.
#pragma once

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "fdpp/engine.h"
#include "server/api_error.h"
#include "server/engine_loop.h"
#include "server/metrics.h"
#include "server/server.h"

namespace fdpp {
class ChatTemplate;
}

namespace fdpp::server {

struct ServerState {
  Engine& engine;                // only its immutable parts from HTTP threads: tokenizer, limits
  EngineLoop& loop;
  Metrics& metrics;
  const ChatTemplate& chat_template;
  ServerOptions options;
  std::string model_name;
  int64_t created = 0;           // Unix seconds when the server started
  // Generation responses not yet fully written (a stream counts until its provider is released):
  // shutdown waits for them to deliver their final event before it closes connections.
  std::atomic<int> responses_in_flight{0};
};

void register_routes(httplib::Server& server, ServerState& state);

// Writes an OpenAI error body with the error's status (and Retry-After on 429).
void send_error(httplib::Response& res, const ApiError& e, const ServerState& state);

// POST /v1/completions and /v1/chat/completions (generation_handler.cpp).
void handle_generation(const httplib::Request& req, httplib::Response& res, ServerState& state, bool chat);

}  // namespace fdpp::server

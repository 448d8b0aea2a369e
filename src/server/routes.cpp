#include "server/routes.h"

#include <fmt/format.h>

#include "server/openai_format.h"

namespace fdpp::server {
namespace {

// Metric label for a path: the known routes as themselves, anything else as "other" (so a scan
// of random URLs cannot grow the metric without bound).
std::string route_label(const std::string& path) {
  for (const char* known : {"/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics"})
    if (path == known) return path;
  if (path.starts_with("/v1/models/")) return "/v1/models/{id}";
  return "other";
}

void send_json(httplib::Response& res, const std::string& body) { res.set_content(body, "application/json"); }

}  // namespace

void send_error(httplib::Response& res, const ApiError& e, const ServerState& state) {
  res.status = e.http_status();
  if (e.http_status() == 429) res.set_header("Retry-After", std::to_string(state.options.retry_after_seconds));
  send_json(res, error_body(e));
}

void register_routes(httplib::Server& server, ServerState& state) {
  server.Post("/v1/completions", [&state](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, state, false);
  });
  server.Post("/v1/chat/completions", [&state](const httplib::Request& req, httplib::Response& res) {
    handle_generation(req, res, state, true);
  });
  server.Get("/v1/models", [&state](const httplib::Request&, httplib::Response& res) {
    send_json(res, models_body(state.model_name, state.created, state.engine.max_context()));
  });
  server.Get(R"(/v1/models/(.+))", [&state](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    if (id != state.model_name) {
      send_error(res, ApiError(404, "invalid_request_error", fmt::format("The model '{}' does not exist", id), "model",
                               "model_not_found"),
                 state);
      return;
    }
    send_json(res, model_body(state.model_name, state.created, state.engine.max_context()));
  });
  server.Get("/health", [&state](const httplib::Request&, httplib::Response& res) {
    const EngineLoad l = state.loop.load();
    send_json(res, fmt::format(R"({{"status":"ok","running":{},"waiting":{}}})", l.running, l.waiting));
  });
  server.Get("/metrics", [&state](const httplib::Request&, httplib::Response& res) {
    res.set_content(state.metrics.render(state.loop.load()), "text/plain; version=0.0.4; charset=utf-8");
  });

  // Errors httplib answers itself (no route, body too large, malformed HTTP) get JSON bodies too.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [&state](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a handler's own error
    switch (res.status) {
      case 404:
        send_error(res, ApiError(404, "not_found_error", fmt::format("no route for {} {}", req.method, req.path)),
                   state);
        break;
      case 413:
        send_error(res, ApiError(413, "invalid_request_error",
                                 fmt::format("the request body is larger than the limit of {} bytes",
                                             state.options.max_body_bytes), "", "request_too_large"),
                   state);
        break;
      default:
        send_error(res, ApiError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                                 fmt::format("HTTP {} for {} {}", res.status, req.method, req.path)),
                   state);
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler([&state](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, ApiError(500, "server_error", fmt::format("internal error: {}", what)), state);
  });
  server.set_logger([&state](const httplib::Request& req, const httplib::Response& res) {
    state.metrics.http_request(route_label(req.path), res.status);
  });
}

}  // namespace fdpp::server

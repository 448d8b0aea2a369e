// fdpp serve: the OpenAI-compatible HTTP server (src/server). Built when cpp-httplib was found at
// configure time (FDPP_HAVE_SERVER); otherwise the command says so and exits with an error.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "commands.h"
#include "fdpp/engine.h"

#ifdef FDPP_HAVE_SERVER
#include "server/server.h"
#include "tokenizer/chat_template.h"
#endif

namespace fdpp::cli {
namespace {

struct ServeArgs {
  std::string model_dir;
  std::string host = "127.0.0.1";
  int port = 8080;
  int32_t max_batch = 8;
  int32_t max_queue = 64;
  int64_t kv_cache_tokens = 0;
  int32_t max_step_tokens = 512;
  std::string backend = "auto";
  std::string dtype = "auto";
  std::string served_model_name;
  size_t max_body_bytes = 4u << 20;
  int http_threads = 0;
  bool no_progress = false;
};

#ifdef FDPP_HAVE_SERVER
void run_serve(const ServeArgs& a) {
  if (a.port < 0 || a.port > 65535)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--port must be in [0, 65535], found {}", a.port));
  if (a.max_batch <= 0)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--max-batch must be at least 1, found {}", a.max_batch));
  if (a.max_queue < 0)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--max-queue must be >= 0, found {}", a.max_queue));
  if (a.kv_cache_tokens < 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("--kv-cache-tokens must be >= 0 (0 = max batch x context), found {}", a.kv_cache_tokens));
  EngineOptions options;
  options.model_dir = a.model_dir;
  options.backend = a.backend;
  options.dtype = a.dtype;
  options.max_batch_size = a.max_batch;
  options.max_waiting = a.max_queue;
  options.kv_cache_tokens = a.kv_cache_tokens;
  options.max_step_tokens = a.max_step_tokens;
  options.show_progress = !a.no_progress;
  // Load the chat template first: a broken one should fail before the weights are read.
  const ChatTemplate chat = ChatTemplate::for_model(a.model_dir);
  if (chat.is_fallback())
    std::fprintf(stderr,
                 "fdpp serve: warning: %s has no chat template (tokenizer_config.json chat_template); "
                 "/v1/chat/completions uses a plain \"User: ... / Assistant:\" fallback\n",
                 a.model_dir.c_str());
  auto engine = Engine::create(options);

  server::ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.served_model_name = a.served_model_name;
  if (so.served_model_name.empty()) {
    std::filesystem::path dir(a.model_dir);
    so.served_model_name = (dir.has_filename() ? dir.filename() : dir.parent_path().filename()).string();
  }
  so.max_body_bytes = a.max_body_bytes;
  so.http_threads = a.http_threads;
  server::run_server(*engine, chat, so);
}
#else
[[noreturn]] void run_serve(const ServeArgs&) {
  throw Error(ErrorCode::kUnsupported,
              "this fdpp was built without the HTTP server (cpp-httplib was not found when CMake configured the "
              "build, or -DFDPP_SERVER=OFF). Install it (Debian/Ubuntu: apt-get install libcpp-httplib-dev), "
              "then re-run cmake and rebuild");
}
#endif

}  // namespace

void add_serve_command(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  cmd->add_option("-m,--model", args->model_dir, "Model directory (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port to listen on; 0 = any free port (printed at start)")->capture_default_str();
  cmd->add_option("--max-batch", args->max_batch, "Requests that run together (continuous batching)")
      ->capture_default_str();
  cmd->add_option("--max-queue", args->max_queue, "Requests that may wait for a batch slot; more get 429; 0 = unbounded")
      ->capture_default_str();
  cmd->add_option("--kv-cache-tokens", args->kv_cache_tokens, "KV-cache capacity in tokens; 0 = max batch x context")
      ->capture_default_str();
  cmd->add_option("--max-step-tokens", args->max_step_tokens, "Prompt tokens processed per step (prefill chunk budget)")
      ->capture_default_str();
  cmd->add_option("--backend", args->backend, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "GPU activation dtype: auto, f16, bf16")->capture_default_str();
  cmd->add_option("--served-model-name", args->served_model_name, "Model id clients use; default: the folder's name");
  cmd->add_option("--max-body-bytes", args->max_body_bytes, "Largest request body; larger ones get 413")
      ->capture_default_str();
  cmd->add_option("--http-threads", args->http_threads, "HTTP worker threads; 0 = enough for batch + queue")
      ->capture_default_str();
  cmd->add_flag("--no-progress", args->no_progress, "No loading progress display");
  cmd->callback([args] { run_serve(*args); });
}

}  // namespace fdpp::cli

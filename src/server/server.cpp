// Start-up and shutdown. SIGINT/SIGTERM are blocked in every thread and taken by sigwait() here,
// so shutdown runs in ordinary code: stop the engine loop (requests in flight end), then the
// HTTP server. SIGPIPE is ignored: a client that vanished makes a write fail, not the process die.
#include "server/server.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <sys/socket.h>
#include <thread>

#include "fdpp/engine.h"
#include "server/engine_loop.h"
#include "server/metrics.h"
#include "server/openai_format.h"
#include "server/routes.h"
#include "tokenizer/chat_template.h"

namespace fdpp::server {
namespace {

// Debian's cpp-httplib 0.11 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into
// the library): a burst of clients overflows it and the dropped connections retry a second
// later. Listening again on the bound socket widens the queue (Linux allows it).
class HttpServer : public httplib::Server {
 public:
  void widen_listen_backlog(int backlog) { ::listen(svr_sock_, backlog); }
};

}  // namespace

void run_server(Engine& engine, const ChatTemplate& chat_template, const ServerOptions& options) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // before any thread starts: all inherit it
  std::signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  EngineLoop loop(engine, metrics);
  const EngineLoad load = loop.load();

  ServerState state{engine, loop, metrics, chat_template, options, options.served_model_name, unix_now(), {}};
  HttpServer server;
  int threads = options.http_threads;
  if (threads <= 0) {
    // Every running or queued request can hold a connection (streams do), plus idle keep-alive
    // connections and the cheap endpoints.
    const int64_t waiting = load.max_waiting > 0 ? load.max_waiting : 4 * load.max_batch_size;
    threads = static_cast<int>(std::max<int64_t>(32, 2 * (load.max_batch_size + waiting) + 16));
  }
  server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server.set_payload_max_length(options.max_body_bytes);
  server.set_keep_alive_max_count(1000);
  // An idle keep-alive connection holds a worker thread (and delays shutdown) this long.
  server.set_keep_alive_timeout(2);
  server.set_read_timeout(30);
  server.set_write_timeout(30);
  server.set_tcp_nodelay(true);
  register_routes(server, state);

  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.host);
    if (port < 0) port = 0;
  } else if (!server.bind_to_port(options.host, port)) {
    port = 0;
  }
  if (port == 0) {
    loop.stop();
    throw Error(ErrorCode::kIo, fmt::format("cannot listen on {}:{} (address in use, or not an address of "
                                            "this machine?)", options.host, options.port));
  }
  server.widen_listen_backlog(std::max(128, threads));
  std::thread http([&server] { server.listen_after_bind(); });
  std::printf("fdpp serve: listening on http://%s:%d (model '%s', backend %s, context %lld, max batch %lld, "
              "queue %lld, KV cache %lld tokens, %d HTTP threads)\n",
              options.host.c_str(), port, state.model_name.c_str(), engine.backend_name().c_str(),
              static_cast<long long>(engine.max_context()), static_cast<long long>(load.max_batch_size),
              static_cast<long long>(load.max_waiting), static_cast<long long>(load.kv_blocks_total * load.kv_block_size),
              threads);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "fdpp serve: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
  loop.stop();  // queued and running requests end now, with an error for their clients
  // Let the handlers write those final answers (bounded) before connections are closed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (state.responses_in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  server.stop();  // stop accepting; workers finish once their keep-alive connections close or time out
  http.join();
}

}  // namespace fdpp::server

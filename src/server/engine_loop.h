// EngineLoop: the one thread that owns the Engine (which is not thread-safe). HTTP handler threads
// hand requests over through a mutex-guarded queue and read each request's TokenEvents from its
// own RequestStream (mutex + condition variable). The loop thread, forever: takes new requests and
// cancellations, submits them (answering admission or rejection on the stream), runs one step()
// over the running batch (continuous batching), and publishes an EngineLoad snapshot for metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fdpp/engine.h"
#include "server/api_error.h"
#include "server/metrics.h"

namespace fdpp::server {

using Clock = std::chrono::steady_clock;

class RequestStream {
 public:
  RequestStream(GenerationRequest request, Clock::time_point received);

  // ---- the HTTP side ----
  // Blocks until the engine accepted the request (nullopt) or refused it (the error).
  std::optional<ApiError> wait_admission();
  // Waits up to `timeout` for events and moves them into `out`. Returns false once the final
  // event has been taken (the request is over); true while more may come.
  bool next(std::vector<TokenEvent>& out, std::chrono::milliseconds timeout);
  // The client went away: the engine will cancel the request at its next chance.
  void mark_cancelled() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  // Set when the request ended for the server's reasons (a failed step, shutdown): its final
  // event is kCancelled and the client should see this error.
  std::optional<ApiError> error() const;
  int64_t prompt_tokens() const { return prompt_tokens_; }
  Clock::time_point received() const { return received_; }

  // ---- the engine side ----
  GenerationRequest take_request() { return std::move(request_); }
  void accept(uint64_t id);
  void reject(const ApiError& error);
  void push(const TokenEvent& ev);  // the last one has finish != kNone
  void set_error(const ApiError& error);
  uint64_t id() const { return id_; }
  Clock::time_point last_token_time;  // engine thread only
  int64_t tokens_seen = 0;            // engine thread only

 private:
  GenerationRequest request_;
  const int64_t prompt_tokens_;
  const Clock::time_point received_;
  std::atomic<bool> cancelled_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool admitted_ = false;
  std::optional<ApiError> error_;
  std::optional<ApiError> rejection_;
  std::deque<TokenEvent> events_;
  bool final_queued_ = false;
  uint64_t id_ = 0;
};

class EngineLoop {
 public:
  EngineLoop(Engine& engine, Metrics& metrics);
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  // Any thread. The stream reports admission (or a 400/429/503 rejection), then the events.
  std::shared_ptr<RequestStream> submit(GenerationRequest request, Clock::time_point received);
  // Any thread: the client of `s` went away; frees its sequence and KV blocks.
  void cancel(const std::shared_ptr<RequestStream>& s);
  // Ends the loop: queued and running requests end with FinishReason::kCancelled. Idempotent.
  void stop();

  // The latest occupancy (waiting includes requests not yet handed to the engine).
  EngineLoad load() const;

 private:
  void run();
  void admit(const std::shared_ptr<RequestStream>& s);
  void on_event(const std::shared_ptr<RequestStream>& s, const TokenEvent& ev);
  void publish_load();

  Engine& engine_;
  Metrics& metrics_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<RequestStream>> incoming_;
  std::vector<std::shared_ptr<RequestStream>> cancels_;
  bool stopping_ = false;
  EngineLoad load_;

  // Engine thread only.
  std::unordered_map<uint64_t, std::shared_ptr<RequestStream>> active_;
  std::vector<uint64_t> finished_;  // ids whose final event went out this iteration
  std::thread thread_;
};

}  // namespace fdpp::server

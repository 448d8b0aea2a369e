#include "server/engine_loop.h"

#include <fmt/format.h>

#include <cstdio>

namespace fdpp::server {
namespace {

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

// ---- RequestStream ----

RequestStream::RequestStream(GenerationRequest request, Clock::time_point received)
    : request_(std::move(request)),
      prompt_tokens_(static_cast<int64_t>(request_.prompt.size())),
      received_(received) {}

std::optional<ApiError> RequestStream::wait_admission() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return admitted_ || rejection_.has_value(); });
  return rejection_;
}

bool RequestStream::next(std::vector<TokenEvent>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !events_.empty() || rejection_.has_value(); });
  while (!events_.empty()) {
    out.push_back(std::move(events_.front()));
    events_.pop_front();
  }
  return !(final_queued_ || rejection_.has_value()) || !events_.empty();
}

void RequestStream::accept(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    id_ = id;
    admitted_ = true;
  }
  cv_.notify_all();
}

void RequestStream::reject(const ApiError& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    rejection_ = error;
  }
  cv_.notify_all();
}

void RequestStream::set_error(const ApiError& error) {
  std::lock_guard<std::mutex> lock(mu_);
  error_ = error;
}

std::optional<ApiError> RequestStream::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void RequestStream::push(const TokenEvent& ev) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (final_queued_) return;
    events_.push_back(ev);
    if (ev.finish != FinishReason::kNone) final_queued_ = true;
  }
  cv_.notify_all();
}

// ---- EngineLoop ----

EngineLoop::EngineLoop(Engine& engine, Metrics& metrics) : engine_(engine), metrics_(metrics) {
  load_ = engine_.load();
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() { stop(); }

std::shared_ptr<RequestStream> EngineLoop::submit(GenerationRequest request, Clock::time_point received) {
  auto s = std::make_shared<RequestStream>(std::move(request), received);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      s->reject(ApiError(503, "server_error", "the server is shutting down"));
      return s;
    }
    incoming_.push_back(s);
  }
  wake_.notify_one();
  return s;
}

void EngineLoop::cancel(const std::shared_ptr<RequestStream>& s) {
  s->mark_cancelled();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    cancels_.push_back(s);
  }
  wake_.notify_one();
}

void EngineLoop::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

EngineLoad EngineLoop::load() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineLoad l = load_;
  l.waiting += static_cast<int64_t>(incoming_.size());
  return l;
}

void EngineLoop::publish_load() {
  const EngineLoad l = engine_.load();
  std::lock_guard<std::mutex> lock(mu_);
  load_ = l;
}

void EngineLoop::admit(const std::shared_ptr<RequestStream>& s) {
  if (s->cancelled()) {
    s->reject(ApiError(499, "invalid_request_error", "the client closed the connection"));
    return;
  }
  try {
    const uint64_t id = engine_.submit(s->take_request(), [this, s](const TokenEvent& ev) {
      on_event(s, ev);
      return !s->cancelled();
    });
    s->accept(id);
    active_[id] = s;
    metrics_.prompt_tokens(s->prompt_tokens());
  } catch (const QueueFullError& e) {
    metrics_.request_rejected("queue_full");
    s->reject(ApiError(429, "rate_limit_error",
                       fmt::format("the server is at capacity: {}; retry later", e.what()), "", "queue_full"));
  } catch (const Error& e) {
    s->reject(ApiError::from_error(e));
  } catch (const std::exception& e) {
    s->reject(ApiError(500, "server_error", e.what()));
  }
}

void EngineLoop::on_event(const std::shared_ptr<RequestStream>& s, const TokenEvent& ev) {
  const auto now = Clock::now();
  if (ev.token >= 0) {
    if (s->tokens_seen == 0) metrics_.time_to_first_token(seconds(now - s->received()));
    else metrics_.inter_token_latency(seconds(now - s->last_token_time));
    s->last_token_time = now;
    ++s->tokens_seen;
    metrics_.generation_tokens(1);
  }
  if (ev.finish != FinishReason::kNone) {
    metrics_.request_finished(ev.finish == FinishReason::kCancelled ? "cancelled" : finish_reason_name(ev.finish));
    if (s->tokens_seen > 0) metrics_.request_duration(seconds(now - s->received()));
    finished_.push_back(ev.request_id);
  }
  s->push(ev);
}

void EngineLoop::run() {
  for (;;) {
    std::deque<std::shared_ptr<RequestStream>> incoming;
    std::vector<std::shared_ptr<RequestStream>> cancels;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stopping_ || !incoming_.empty() || !cancels_.empty() || !engine_.idle(); });
      if (stopping_) break;
      incoming.swap(incoming_);
      cancels.swap(cancels_);
    }
    for (const auto& s : cancels)
      if (s->id() != 0) engine_.cancel(s->id());
    for (const auto& s : incoming) admit(s);
    if (!engine_.idle()) {
      try {
        engine_.step();
      } catch (const std::exception& e) {
        // A failed step leaves no request able to continue: end them all with the error.
        std::fprintf(stderr, "fdpp serve: engine step failed: %s\n", e.what());
        const ApiError err(500, "server_error", fmt::format("generation failed: {}", e.what()));
        std::vector<uint64_t> ids;
        for (const auto& kv : active_) ids.push_back(kv.first);
        for (uint64_t id : ids) {
          if (auto it = active_.find(id); it != active_.end()) it->second->set_error(err);
          engine_.cancel(id);
        }
      }
    }
    for (uint64_t id : finished_) active_.erase(id);
    finished_.clear();
    publish_load();
  }
  // Shutting down: end everything still queued or running.
  std::deque<std::shared_ptr<RequestStream>> incoming;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming.swap(incoming_);
  }
  const ApiError shutting_down(503, "server_error", "the server is shutting down");
  for (const auto& s : incoming) s->reject(shutting_down);
  std::vector<uint64_t> ids;
  for (const auto& kv : active_) ids.push_back(kv.first);
  for (uint64_t id : ids) {
    if (auto it = active_.find(id); it != active_.end()) it->second->set_error(shutting_down);
    engine_.cancel(id);
  }
  active_.clear();
  finished_.clear();
  publish_load();
}

}  // namespace fdpp::server

// Server metrics in the Prometheus text exposition format (GET /metrics). Counters and histograms
// are updated from any thread; the gauges (running, waiting, KV cache) come from the engine
// thread's latest EngineLoad snapshot at render time.
//
//   fdpp_http_requests_total{route,code}        counter   HTTP requests answered
//   fdpp_requests_finished_total{reason}         counter   generations ended: stop, length, cancelled, error
//   fdpp_requests_rejected_total{reason}         counter   queue_full
//   fdpp_prompt_tokens_total                     counter
//   fdpp_generation_tokens_total                 counter
//   fdpp_requests_running / _waiting             gauge     batch occupancy; waiting = queue length
//   fdpp_time_to_first_token_seconds             histogram request received -> first token
//   fdpp_inter_token_latency_seconds             histogram between consecutive tokens of a request
//   fdpp_request_duration_seconds                histogram request received -> last token
//   fdpp_kv_cache_blocks_used / _total           gauge     paged KV cache blocks
//   fdpp_kv_cache_usage_ratio                    gauge     used / total
//   fdpp_softmax_fallback_rows_total             counter   attention rows the backend recomputed
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "fdpp/engine.h"

namespace fdpp::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count lines (the HELP and TYPE lines are the caller's).
  void render(const std::string& name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // one per bound, non-cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void http_request(const std::string& route, int status);
  void request_finished(const std::string& reason);
  void request_rejected(const std::string& reason);
  void prompt_tokens(int64_t n) { prompt_tokens_ += n; }
  void generation_tokens(int64_t n) { generation_tokens_ += n; }
  void time_to_first_token(double seconds) { ttft_.observe(seconds); }
  void inter_token_latency(double seconds) { itl_.observe(seconds); }
  void request_duration(double seconds) { e2e_.observe(seconds); }

  std::string render(const EngineLoad& load) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> http_;
  std::map<std::string, uint64_t> finished_;
  std::map<std::string, uint64_t> rejected_;
  std::atomic<int64_t> prompt_tokens_{0};
  std::atomic<int64_t> generation_tokens_{0};
  Histogram ttft_, itl_, e2e_;
};

}  // namespace fdpp::server

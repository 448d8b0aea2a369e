#include "server/metrics.h"

#include <fmt/format.h>

#include <cmath>

namespace fdpp::server {
namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

void head(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}


// An unlabelled metric: its HELP/TYPE header and one sample.
template <typename V>
void scalar(std::string& out, const char* name, const char* type, const char* help, V value) {
  head(out, name, type, help);
  out += fmt::format("{} {}\n", name, value);
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += value;
  ++count_;
}

void Histogram::render(const std::string& name, std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, number(bounds_[i]), cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, number(sum_), name, count_);
}

Metrics::Metrics()
    : ttft_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5}),
      e2e_({0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}) {}

void Metrics::http_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++http_[{route, status}];
}

void Metrics::request_finished(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++finished_[reason];
}

void Metrics::request_rejected(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

std::string Metrics::render(const EngineLoad& load) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    head(out, "fdpp_http_requests_total", "counter", "HTTP requests answered, by route and status code.");
    for (const auto& [key, n] : http_)
      out += fmt::format("fdpp_http_requests_total{{route=\"{}\",code=\"{}\"}} {}\n", label(key.first), key.second, n);
    head(out, "fdpp_requests_finished_total", "counter",
         "Generation requests that ended, by reason (stop, length, cancelled, error).");
    for (const char* r : {"stop", "length", "cancelled", "error"}) {
      auto it = finished_.find(r);
      out += fmt::format("fdpp_requests_finished_total{{reason=\"{}\"}} {}\n", r, it == finished_.end() ? 0 : it->second);
    }
    head(out, "fdpp_requests_rejected_total", "counter", "Requests refused before generation, by reason.");
    auto it = rejected_.find("queue_full");
    out += fmt::format("fdpp_requests_rejected_total{{reason=\"queue_full\"}} {}\n", it == rejected_.end() ? 0 : it->second);
  }
  scalar(out, "fdpp_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.",
         prompt_tokens_.load());
  scalar(out, "fdpp_generation_tokens_total", "counter", "Tokens generated.",
         generation_tokens_.load());

  scalar(out, "fdpp_requests_running", "gauge", "Requests in the running batch.",
         load.running);
  scalar(out, "fdpp_requests_waiting", "gauge", "Requests queued for a place in the batch (queue length).",
         load.waiting);
  scalar(out, "fdpp_max_batch_size", "gauge", "Most requests that run together.",
         load.max_batch_size);

  head(out, "fdpp_time_to_first_token_seconds", "histogram", "From receiving a request to its first token.");
  ttft_.render("fdpp_time_to_first_token_seconds", out);
  head(out, "fdpp_inter_token_latency_seconds", "histogram", "Between consecutive tokens of one request.");
  itl_.render("fdpp_inter_token_latency_seconds", out);
  head(out, "fdpp_request_duration_seconds", "histogram", "From receiving a request to its last token.");
  e2e_.render("fdpp_request_duration_seconds", out);

  scalar(out, "fdpp_kv_cache_blocks_used", "gauge", "Paged KV-cache blocks held by running requests.",
         load.kv_blocks_used);
  scalar(out, "fdpp_kv_cache_blocks_total", "gauge", "Paged KV-cache blocks in all.",
         load.kv_blocks_total);
  scalar(out, "fdpp_kv_cache_block_size_tokens", "gauge", "Tokens per KV-cache block.",
         load.kv_block_size);
  scalar(out, "fdpp_kv_cache_usage_ratio", "gauge", "Fraction of KV-cache blocks in use.",
         load.kv_blocks_total > 0 ? static_cast<double>(load.kv_blocks_used) / load.kv_blocks_total : 0.0);
  scalar(out, "fdpp_softmax_fallback_rows_total", "counter",
         "Attention rows recomputed because the unified-max softmax overflowed (0 on the CPU backend).",
         load.softmax_fallbacks);
  scalar(out, "fdpp_steps_queued_ahead_total", "counter",
         "Decode steps queued on the device before the previous step's tokens reached the host.",
         load.steps_queued_ahead);
  return out;
}

}  // namespace fdpp::server

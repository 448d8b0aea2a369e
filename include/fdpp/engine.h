// Engine: loads a model directory and generates. Requests are submitted with their sampling
// parameters and a callback that receives text as it is produced; step() advances every running
// request by one forward pass (continuous batching: new requests join the running batch).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fdpp/sampling.h"
#include "fdpp/status.h"

namespace fdpp {

class Tokenizer;
struct ModelConfig;

struct EngineOptions {
  std::filesystem::path model_dir;
  std::string backend = "auto";       // "auto" | "cpu" | "cuda"
  std::string dtype = "auto";         // GPU activations: "auto" (bf16 for bf16 checkpoints, else f16) | "f16" | "bf16"
  int32_t max_batch_size = 1;         // sequences that run together
  int32_t max_step_tokens = 512;      // prompt tokens processed per step (prefill chunk budget)
  int32_t kv_block_size = 16;         // tokens per KV-cache block
  int64_t kv_cache_tokens = 0;        // KV-cache capacity in tokens; 0 = max_batch_size * context
  int64_t max_context = 0;            // longest sequence; 0 = the model's limit
  int32_t max_waiting = 0;            // requests queued beyond the running batch; 0 = unbounded
  bool show_progress = true;          // progress display on stderr while loading
};

enum class FinishReason { kNone, kEos, kStopString, kLength, kCancelled };
const char* finish_reason_name(FinishReason reason);  // OpenAI spelling: "stop", "length", ...

struct GenerationRequest {
  std::vector<int32_t> prompt;        // token ids, BOS included when the model wants it
  SamplingParams sampling;
  StopConditions stop;                // eos_ids empty: the model's own EOS ids
};

// One piece of streamed output. The last event of a request has finish != kNone.
struct TokenEvent {
  uint64_t request_id = 0;
  int32_t token = -1;                 // the sampled token, -1 on a final event without one
  std::string text;                   // text this event completes (may be empty)
  FinishReason finish = FinishReason::kNone;
};
// Return false to cancel the request (a client went away).
using TokenCallback = std::function<bool(const TokenEvent&)>;

// Thrown by submit() when EngineOptions::max_waiting requests already wait for a place in the
// batch: the caller should retry later (the server answers 429 with Retry-After).
class QueueFullError : public Error {
 public:
  explicit QueueFullError(const std::string& message) : Error(ErrorCode::kOutOfRange, message) {}
};

// A snapshot of the engine's occupancy, for metrics and admission decisions.
struct EngineLoad {
  int64_t running = 0;                // requests in the batch
  int64_t waiting = 0;                // requests queued for a place in the batch
  int64_t max_batch_size = 0;
  int64_t max_waiting = 0;            // 0 = unbounded
  int64_t kv_blocks_used = 0;         // KV-cache blocks held by running requests
  int64_t kv_blocks_total = 0;
  int64_t kv_block_size = 0;          // tokens per block
  int64_t softmax_fallbacks = 0;      // attention rows the backend recomputed (Backend::softmax_fallback_rows)
  int64_t steps_queued_ahead = 0;     // decode steps queued before the tokens of the step before reached the host
};

struct RequestStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  double prefill_seconds = 0;         // submit -> first token
  double decode_seconds = 0;          // first token -> last token
};

struct GenerationResult {
  std::vector<int32_t> tokens;        // generated ids (EOS not included)
  std::string text;
  FinishReason finish = FinishReason::kNone;
  RequestStats stats;
};

class Engine {
 public:
  // Loads config, weights and tokenizer from options.model_dir. Throws fdpp::Error.
  static std::unique_ptr<Engine> create(const EngineOptions& options);
  virtual ~Engine() = default;

  virtual const Tokenizer& tokenizer() const = 0;
  virtual const ModelConfig& config() const = 0;
  virtual std::string backend_name() const = 0;
  virtual int64_t max_context() const = 0;

  // Queues a request; throws fdpp::Error (kInvalidArgument / kOutOfRange) on an empty prompt, a
  // prompt that does not fit the context, prompt + max_tokens beyond it, bad sampling values, and
  // QueueFullError when max_waiting requests are already queued and none can join the batch now.
  virtual uint64_t submit(GenerationRequest request, TokenCallback callback) = 0;
  virtual void cancel(uint64_t request_id) = 0;
  // One forward pass over the running requests. Returns false when nothing is left to do.
  virtual bool step() = 0;
  virtual bool idle() const = 0;
  // Of a running request, or of one of the last kFinishedStatsKept finished ones; zeros otherwise.
  virtual RequestStats stats(uint64_t request_id) const = 0;
  static constexpr size_t kFinishedStatsKept = 4096;
  virtual EngineLoad load() const = 0;

  // Convenience: submit, then step until this request finishes.
  GenerationResult generate(GenerationRequest request, const TokenCallback& on_token = {});

  // Figures for the one-line speed summary.
  virtual size_t weight_bytes_per_step() const = 0;
  virtual size_t kv_bytes_per_token() const = 0;
  virtual double read_bandwidth_ceiling() const = 0;  // bytes/s; 0 when not measured
};

}  // namespace fdpp

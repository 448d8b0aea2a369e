// Whole-model benchmark: prefill of one prompt and decode steps of a batch at a given context,
// timed on the host around one LlamaModel step (host inputs to greedy tokens on the host, or to
// logits on the host), with the bytes each decode step must read and the fraction of the
// backend's read-bandwidth ceiling that makes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/llama_model.h"

namespace fdpp {

struct ModelBenchOptions {
  std::vector<int64_t> prefill_tokens = {128, 1024, 8192};
  std::vector<int64_t> batches = {1, 4, 16, 64};
  std::vector<int64_t> contexts = {128, 1024, 4096, 8192, 32768};
  int64_t decode_steps = 16;   // timed steps per decode case (after one warm-up step)
  int64_t kv_block_size = 16;
  // Decode steps end as generation's do by default: greedy tokens drawn on the backend, R tokens
  // to the host. host_logits: every step copies its [R, V] fp32 logits to the host instead (the
  // host sampler's path; on a backend without a sampler both are this).
  bool host_logits = false;
};

struct ModelBenchRow {
  std::string phase;           // "prefill" or "decode"
  int64_t batch = 1;
  int64_t tokens = 0;          // prefill: prompt tokens; decode: context length
  double ms = 0;               // prefill: the whole prompt; decode: median ms per step
  double tokens_per_s = 0;
  double bytes = 0;            // decode: bytes one step reads (weights + KV at this context)
  double gbps = 0;
  double ceiling_fraction = 0; // of the backend's read ceiling; 0 when not measured
  bool tokens_on_backend = false;  // decode: greedy tokens drawn on the backend (else logits to the host)
  std::string skipped;         // why the case did not run (context too long, out of memory)
};

// Runs every case; `progress` is called after each. Cases beyond the model's context or the
// device memory are reported as skipped, not fatal.
std::vector<ModelBenchRow> run_model_bench(LlamaModel& model, Backend& backend, const ModelBenchOptions& options,
                                           const std::function<void(size_t done, size_t total)>& progress = {});

}  // namespace fdpp

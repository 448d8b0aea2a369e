// Whole-model benchmark: prefill of one prompt and decode steps of a batch at a given context,
// timed on the host around one step as the engine runs it (host inputs to sampled tokens on the
// host), with the bytes each decode step must read and the fraction of the backend's
// read-bandwidth ceiling that makes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "fdpp/sampling.h"
#include "model/llama_model.h"

namespace fdpp {

struct ModelBenchOptions {
  std::vector<int64_t> prefill_tokens = {128, 1024, 8192};
  std::vector<int64_t> batches = {1, 4, 16, 64};
  std::vector<int64_t> contexts = {128, 1024, 4096, 8192, 32768};
  int64_t decode_steps = 16;   // timed steps per decode case (after one warm-up step)
  // Steps run after the timed ones with the backend's kernel timeline on (0: none), attributed
  // per kernel in ModelBenchRow::timeline.
  int64_t timeline_steps = 0;
  int64_t kv_block_size = 16;
  // Each decode step ends as the engine's does: a token per sequence drawn with these parameters
  // on the backend where it can (only the tokens come to the host), else from the [R, V] logits
  // by the host sampler, inside the timed step. Greedy unless set.
  SamplingParams sampling = greedy_sampling();
  static SamplingParams greedy_sampling() {
    SamplingParams p;
    p.temperature = 0.0f;
    return p;
  }
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
  bool tokens_on_backend = false;  // decode: tokens drawn on the backend (else by the host sampler)
  bool overlapped = false;     // decode: step n + 1 queued before step n's tokens were taken
  std::string skipped;         // why the case did not run (context too long, out of memory)
  StepBreakdown timeline;      // decode with timeline_steps: where a step's time went, per kernel
  std::string timeline_note;   // why there is no timeline (the backend records none)
};

// Runs every case; `progress` is called after each. Cases beyond the model's context or the
// device memory are reported as skipped, not fatal.
std::vector<ModelBenchRow> run_model_bench(LlamaModel& model, Backend& backend, const ModelBenchOptions& options,
                                           const std::function<void(size_t done, size_t total)>& progress = {});

}  // namespace fdpp

// Token sampling on the host: one Sampler per sequence, holding that sequence's random stream.
//
// The pipeline (the order Hugging Face and vLLM apply):
//   1. repetition penalty over the unique previous tokens (logit/p if logit > 0 else logit*p)
//   2. temperature == 0: argmax (lowest id on ties), done
//   3. logits / temperature
//   4. top-k: keep tokens whose logit >= the k-th largest (ties at the boundary are kept, as HF)
//   5. softmax over the kept tokens
//   6. top-p: keep the smallest prefix of the probabilities sorted descending (ties broken by
//      lower id) whose cumulative sum >= top_p; always at least one token
//   7. min-p: drop tokens with p < min_p * p_max
//   8. renormalise and draw: u = a uniform double in [0, 1) built from 53 bits of one
//      std::mt19937_64 output; walk the kept tokens in ascending id order and return the first
//      whose cumulative probability exceeds u * total. Both the engine (mt19937_64) and the
//      conversion are fully specified, so a seed gives the same tokens with any standard library
//      (up to the order double sums are taken in when a top-p boundary is a rounding-level tie).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "fdpp/sampling.h"

namespace fdpp {

// Throws Error(kInvalidArgument) naming the parameter and its value when one is out of range:
// temperature finite and >= 0, top_k >= 0, top_p in (0, 1], min_p in [0, 1],
// repetition_penalty finite and > 0.
void validate(const SamplingParams& params);

// Applies the repetition penalty in place to logits[id] for each distinct id in tokens.
// Throws Error(kOutOfRange) for an id outside [0, logits.size()).
void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> tokens,
                              float penalty);

// Index of the largest logit; the lowest such index on ties; NaN entries are never chosen
// unless all are NaN (then 0).
int32_t argmax(std::span<const float> logits);

class Sampler {
 public:
  // Validates params (see validate()) and seeds the random stream from params.seed, or from
  // std::random_device when no seed is given.
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from logits [V] (V > 0). logits is scratch: on return it holds the
  // penalised, temperature-scaled values. previous_tokens: the ids the repetition penalty
  // applies to (usually prompt + generated so far), each in [0, V).
  int32_t sample(std::span<float> logits, std::span<const int32_t> previous_tokens);

  const SamplingParams& params() const { return params_; }

 private:
  // A uniform double in [0, 1): the top 53 bits of one draw, times 2^-53.
  double uniform01();

  SamplingParams params_;
  std::mt19937_64 rng_;
  // Scratch reused across calls (V can be 128k+).
  std::vector<int32_t> ids_;    // candidate token ids, ascending
  std::vector<float> probs_;    // probability of ids_[j]; 0 once filtered out
  std::vector<uint64_t> order_;  // top-p sort keys: (~prob bits) << 32 | index into ids_
  std::vector<float> values_;   // copy of logits for the top-k threshold
};

}  // namespace fdpp

// Sampling parameters of one request, with the meaning the OpenAI API, vLLM and llama.cpp give them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fdpp {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy (argmax)
  int32_t top_k = 0;                // keep the k most likely tokens; 0 = off
  float top_p = 1.0f;               // nucleus: smallest set with cumulative probability >= top_p
  float min_p = 0.0f;               // drop tokens with p < min_p * p_max; 0 = off
  float repetition_penalty = 1.0f;  // HF/CTRL: logit/p if logit > 0 else logit*p, for seen tokens
  std::optional<uint64_t> seed;     // fixed seed: reproducible; none: drawn from random_device
};

struct StopConditions {
  int32_t max_tokens = 256;               // generated tokens at most (> 0)
  std::vector<int64_t> eos_ids;           // stop (and do not emit) on any of these
  std::vector<std::string> stop_strings;  // stop when the text ends with one; it is not emitted
  bool ignore_eos = false;
};

}  // namespace fdpp

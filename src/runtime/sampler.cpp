#include "runtime/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "fdpp/status.h"

namespace fdpp {

namespace {

[[noreturn]] void invalid(const char* name, const std::string& value, const char* expected) {
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("invalid sampling parameter {}={}: must be {}", name, value, expected));
}

// Top-p narrows the boundary by quickselect until this many candidates remain, then sorts them.
constexpr size_t kSortBelow = 64;

}  // namespace

void validate(const SamplingParams& p) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    invalid("temperature", fmt::format("{}", p.temperature), "a finite number >= 0 (0 = greedy)");
  }
  if (p.top_k < 0) invalid("top_k", fmt::format("{}", p.top_k), ">= 0 (0 = off)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    invalid("top_p", fmt::format("{}", p.top_p), "in (0, 1] (1 = off)");
  }
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) {
    invalid("min_p", fmt::format("{}", p.min_p), "in [0, 1] (0 = off)");
  }
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    invalid("repetition_penalty", fmt::format("{}", p.repetition_penalty),
            "a finite number > 0 (1 = off)");
  }
}

void apply_repetition_penalty(std::span<float> logits, std::span<const int32_t> tokens,
                              float penalty) {
  if (penalty == 1.0f || tokens.empty()) return;
  std::vector<int32_t> unique(tokens.begin(), tokens.end());
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  const auto V = static_cast<int64_t>(logits.size());
  if (unique.front() < 0 || unique.back() >= V) {
    const int32_t bad = unique.front() < 0 ? unique.front() : unique.back();
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("repetition penalty: previous token id {} is outside the vocabulary "
                            "[0, {})",
                            bad, V));
  }
  for (int32_t id : unique) {
    float& l = logits[static_cast<size_t>(id)];
    l = l > 0.0f ? l / penalty : l * penalty;
  }
}

int32_t argmax(std::span<const float> logits) {
  int32_t best = 0;
  float best_value = -std::numeric_limits<float>::infinity();
  bool found = false;
  for (size_t i = 0; i < logits.size(); ++i) {
    const float l = logits[i];
    if (std::isnan(l)) continue;
    if (!found || l > best_value) {
      best = static_cast<int32_t>(i);
      best_value = l;
      found = true;
    }
  }
  return best;
}

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  validate(params_);
  if (params_.seed) {
    rng_.seed(*params_.seed);
  } else {
    std::random_device rd;
    const uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
    rng_.seed(seed);
  }
}

double Sampler::uniform01() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> previous_tokens) {
  if (logits.empty()) throw Error(ErrorCode::kInvalidArgument, "sampler: empty logits");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw Error(ErrorCode::kInvalidArgument, "sampler: vocabulary too large");
  }
  const size_t V = logits.size();

  // 1-2. repetition penalty; greedy
  apply_repetition_penalty(logits, previous_tokens, params_.repetition_penalty);
  if (params_.temperature == 0.0f) return argmax(logits);

  // 3. temperature; NaN becomes -inf so it is never drawn and comparisons stay well defined
  const float temperature = params_.temperature;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (float& l : logits) l = std::isnan(l) ? kNegInf : l / temperature;

  // 4. top-k: the k-th largest value is the threshold; every token at or above it stays
  ids_.clear();
  const size_t k = static_cast<size_t>(params_.top_k);
  if (k > 0 && k < V) {
    values_.assign(logits.begin(), logits.end());
    std::nth_element(values_.begin(), values_.begin() + static_cast<ptrdiff_t>(k - 1),
                     values_.end(), std::greater<float>());
    const float threshold = values_[k - 1];
    for (size_t i = 0; i < V; ++i) {
      if (logits[i] >= threshold) ids_.push_back(static_cast<int32_t>(i));
    }
  } else {
    ids_.resize(V);
    std::iota(ids_.begin(), ids_.end(), 0);
  }
  const size_t n = ids_.size();

  // 5. softmax over the candidates
  float max_logit = -std::numeric_limits<float>::infinity();
  for (int32_t id : ids_) max_logit = std::max(max_logit, logits[static_cast<size_t>(id)]);
  if (!std::isfinite(max_logit)) {
    // All -inf, or +inf present (e.g. a tiny temperature overflowed): the limit is greedy.
    return argmax(logits);
  }
  probs_.resize(n);
  double sum = 0.0;
  for (size_t j = 0; j < n; ++j) {
    const float e = std::exp(logits[static_cast<size_t>(ids_[j])] - max_logit);
    probs_[j] = e;
    sum += e;
  }
  const auto inv_sum = static_cast<float>(1.0 / sum);
  for (float& p : probs_) p *= inv_sum;

  // 6. top-p over the probabilities sorted descending (lower id first on ties)
  if (params_.top_p < 1.0f && n > 1) {
    // One 64-bit key per candidate sorts by probability descending, then index (= id)
    // ascending: probabilities are >= 0, so their float bits order like the values.
    order_.resize(n);
    for (size_t j = 0; j < n; ++j) {
      uint32_t bits;
      std::memcpy(&bits, &probs_[j], 4);
      order_[j] = (static_cast<uint64_t>(0xffffffffu - bits) << 32) | j;
    }
    auto prob_of = [this](uint64_t key) -> float& { return probs_[key & 0xffffffffu]; };
    // Quickselect on the boundary: [0, lo) is known to be kept with mass `above`, the boundary
    // lies in [lo, hi). Halving the range with nth_element costs O(n) in all, instead of a sort.
    const double top_p = params_.top_p;
    size_t lo = 0, hi = n;
    double above = 0.0;
    while (hi - lo > kSortBelow) {
      const size_t mid = lo + (hi - lo) / 2;
      std::nth_element(order_.begin() + static_cast<ptrdiff_t>(lo),
                       order_.begin() + static_cast<ptrdiff_t>(mid),
                       order_.begin() + static_cast<ptrdiff_t>(hi));
      double mass = 0.0;
      for (size_t i = lo; i <= mid; ++i) mass += prob_of(order_[i]);
      if (above + mass >= top_p) {
        hi = mid + 1;
      } else {
        above += mass;
        lo = mid + 1;
      }
    }
    std::sort(order_.begin() + static_cast<ptrdiff_t>(lo),
              order_.begin() + static_cast<ptrdiff_t>(hi));
    size_t keep = hi;  // rounding kept the total below top_p: then hi == n, keep everything
    double cumulative = above;
    for (size_t i = lo; i < hi; ++i) {
      cumulative += prob_of(order_[i]);
      if (cumulative >= top_p) {
        keep = i + 1;
        break;
      }
    }
    for (size_t i = keep; i < n; ++i) prob_of(order_[i]) = 0.0f;
  }

  // 7. min-p, relative to the most likely token (unchanged by the filters above)
  if (params_.min_p > 0.0f) {
    const float p_max = *std::max_element(probs_.begin(), probs_.end());
    const float threshold = params_.min_p * p_max;
    for (float& p : probs_) {
      if (p < threshold) p = 0.0f;
    }
  }

  // 8. draw from the renormalised distribution, in ascending id order
  double total = 0.0;
  for (float p : probs_) total += p;
  const double target = uniform01() * total;
  double cumulative = 0.0;
  size_t last_kept = 0;
  for (size_t j = 0; j < n; ++j) {
    if (probs_[j] <= 0.0f) continue;
    cumulative += probs_[j];
    last_kept = j;
    if (cumulative > target) return ids_[j];
  }
  return ids_[last_kept];
}

}  // namespace fdpp

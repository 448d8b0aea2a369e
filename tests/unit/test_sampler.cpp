// Sampler: greedy, seeded reproducibility, each filter, repetition penalty, and empirical
// frequencies against the softmax.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "fdpp/status.h"
#include "runtime/sampler.h"

namespace fdpp {
namespace {

std::vector<float> random_logits(uint32_t seed, size_t V, float stddev) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(V);
  for (float& x : v) x = dist(gen);
  return v;
}

std::vector<float> log_probs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

SamplingParams seeded(uint64_t seed) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

// Draws n tokens (logits copied each time: sample() overwrites them) and counts each id.
std::vector<int64_t> histogram(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = logits;
    ++counts[static_cast<size_t>(s.sample(l, {}))];
  }
  return counts;
}

// Each count within 5 sigma of n * p (binomial), p normalised here.
void expect_frequencies(const std::vector<int64_t>& counts, std::vector<double> p, int n) {
  double total = 0;
  for (double x : p) total += x;
  double worst_sigma = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double pi = p[i] / total;
    if (pi == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should be filtered out";
      continue;
    }
    const double sigma = std::sqrt(n * pi * (1 - pi));
    const double z = std::abs(static_cast<double>(counts[i]) - n * pi) / sigma;
    EXPECT_LT(z, 5.0) << "token " << i << ": " << counts[i] << " draws, expected " << n * pi;
    worst_sigma = std::max(worst_sigma, z);
  }
  std::printf("[ measured ] largest deviation from expected count: %.2f sigma\n", worst_sigma);
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature) {
  double mx = -1e300;
  for (float l : logits) mx = std::max(mx, l / temperature);
  std::vector<double> p;
  for (float l : logits) p.push_back(std::exp(l / temperature - mx));
  return p;
}

void expect_invalid(SamplingParams p, const std::string& name, const std::string& value) {
  try {
    validate(p);
    ADD_FAILURE() << "validate accepted " << name << "=" << value;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find(name + "=" + value), std::string::npos) << e.what();
  }
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(Sampler, GreedyIsArgmaxLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0.0f;
  Sampler s(p);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    auto logits = random_logits(seed, 5003, 2.0f);
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(s.sample(logits, {}), best);
  }
  std::vector<float> tie(100, 0.0f);
  tie[20] = tie[10] = tie[70] = 3.0f;
  EXPECT_EQ(s.sample(tie, {}), 10);
  std::vector<float> with_nan = {std::numeric_limits<float>::quiet_NaN(), 1.0f, 2.0f};
  EXPECT_EQ(s.sample(with_nan, {}), 2);
}

TEST(Sampler, SeededSamplingIsReproducible) {
  SamplingParams p = seeded(42);
  p.temperature = 0.9f;
  p.top_k = 200;
  p.top_p = 0.95f;
  const auto logits = random_logits(1, 1000, 1.0f);
  auto draws = [&](const SamplingParams& params) {
    Sampler s(params);
    std::vector<int32_t> out;
    for (int i = 0; i < 100; ++i) {
      std::vector<float> l = logits;
      out.push_back(s.sample(l, out));
    }
    return out;
  };
  const auto a = draws(p), b = draws(p);
  EXPECT_EQ(a, b);
  SamplingParams other = p;
  other.seed = 43;
  EXPECT_NE(a, draws(other));
  SamplingParams unseeded = p;
  unseeded.seed.reset();
  EXPECT_NE(draws(unseeded), draws(unseeded));
}

// With V = 1024 equal logits every probability is exactly 1/1024, so the token drawn is
// floor(u * 1024) = (mt19937_64 output) >> 54: pins the draw to the documented formula.
TEST(Sampler, DrawUsesTop53BitsOfMt19937_64) {
  Sampler s(seeded(2024));
  std::mt19937_64 gen(2024);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> l(1024, 0.5f);
    ASSERT_EQ(s.sample(l, {}), static_cast<int32_t>(gen() >> 54)) << "draw " << i;
  }
}

TEST(Sampler, TopKOneAndTinyTopPAreGreedy) {
  SamplingParams k1 = seeded(1);
  k1.top_k = 1;
  SamplingParams p_tiny = seeded(2);
  p_tiny.top_p = 1e-6f;
  SamplingParams both = seeded(3);
  both.top_p = 1e-6f;
  both.temperature = 5.0f;
  Sampler a(k1), b(p_tiny), c(both);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    const auto logits = random_logits(seed, 3001, 1.0f);
    const auto best = std::max_element(logits.begin(), logits.end()) - logits.begin();
    auto l1 = logits, l2 = logits, l3 = logits;
    EXPECT_EQ(a.sample(l1, {}), best);
    EXPECT_EQ(b.sample(l2, {}), best);
    EXPECT_EQ(c.sample(l3, {}), best);
  }
}

TEST(Sampler, TopKKeepsTheKBest) {
  const std::vector<double> p = {0.1, 0.4, 0.05, 0.3, 0.15};
  SamplingParams params = seeded(5);
  params.top_k = 3;  // 0.4, 0.3, 0.15
  Sampler s(params);
  const int n = 20000;
  expect_frequencies(histogram(s, log_probs(p), n), {0, 0.4, 0, 0.3, 0.15}, n);
}

TEST(Sampler, TopKKeepsTiesAtTheBoundary) {
  SamplingParams params = seeded(6);
  params.top_k = 2;
  Sampler s(params);
  const int n = 3000;
  expect_frequencies(histogram(s, {1.0f, 0.0f, 1.0f, 1.0f}, n), {1, 0, 1, 1}, n);
}

TEST(Sampler, TopPKeepsSmallestCoveringPrefix) {
  const std::vector<double> p = {0.05, 0.5, 0.15, 0.3};
  const int n = 20000;
  {
    SamplingParams params = seeded(7);
    params.top_p = 0.75f;  // 0.5 + 0.3 >= 0.75
    Sampler s(params);
    expect_frequencies(histogram(s, log_probs(p), n), {0, 0.5, 0, 0.3}, n);
  }
  {
    SamplingParams params = seeded(8);
    params.top_p = 0.85f;  // needs 0.15 too
    Sampler s(params);
    expect_frequencies(histogram(s, log_probs(p), n), {0, 0.5, 0.15, 0.3}, n);
  }
}

TEST(Sampler, MinPDropsUnlikelyTokens) {
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  const int n = 20000;
  {
    SamplingParams params = seeded(9);
    params.min_p = 0.2f;  // threshold 0.1: drops 0.05
    Sampler s(params);
    expect_frequencies(histogram(s, log_probs(p), n), {0.5, 0.3, 0.15, 0}, n);
  }
  {
    SamplingParams params = seeded(10);
    params.min_p = 0.35f;  // threshold 0.175: drops 0.15 and 0.05
    Sampler s(params);
    expect_frequencies(histogram(s, log_probs(p), n), {0.5, 0.3, 0, 0}, n);
  }
}

TEST(Sampler, RepetitionPenalty) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.repetition_penalty = 1.5f;
  Sampler s(params);
  // 2.0 / 1.5 = 1.33 < 1.5: the seen token loses its lead.
  std::vector<float> l = {2.0f, 1.5f, 0.5f};
  const std::vector<int32_t> seen = {0};
  EXPECT_EQ(s.sample(l, seen), 1);
  EXPECT_EQ(l[0], 2.0f / 1.5f);
  // Applied once per distinct token: 2.0 / 1.5 = 1.33 > 1.2 (three times would give 0.59).
  std::vector<float> l2 = {2.0f, 1.2f, 0.5f};
  const std::vector<int32_t> repeated = {0, 0, 0, 2, 0};
  EXPECT_EQ(s.sample(l2, repeated), 0);
  EXPECT_EQ(l2[0], 2.0f / 1.5f);
  EXPECT_EQ(l2[2], 0.5f / 1.5f);
  // Negative logits are multiplied: -0.5 * 1.5 = -0.75 < -0.6.
  std::vector<float> l3 = {-0.5f, -0.6f};
  EXPECT_EQ(s.sample(l3, seen), 1);
  // Without the penalty the same logits keep their argmax.
  SamplingParams off;
  off.temperature = 0.0f;
  Sampler plain(off);
  std::vector<float> l4 = {2.0f, 1.5f, 0.5f};
  EXPECT_EQ(plain.sample(l4, seen), 0);
  // Out-of-vocabulary history is a bug upstream, reported as such.
  std::vector<float> l5 = {1.0f, 2.0f};
  const std::vector<int32_t> bad = {0, 2};
  try {
    s.sample(l5, bad);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOutOfRange);
  }
}

TEST(Sampler, FrequenciesMatchSoftmax) {
  const auto logits = random_logits(11, 10, 1.5f);
  const int n = 100000;
  {
    Sampler s(seeded(12));
    expect_frequencies(histogram(s, logits, n), softmax(logits, 1.0), n);
  }
  {
    SamplingParams p = seeded(13);
    p.temperature = 0.6f;
    Sampler s(p);
    expect_frequencies(histogram(s, logits, n), softmax(logits, 0.6), n);
  }
}

TEST(Sampler, EdgeCases) {
  // NaN logits are never drawn; -inf ones neither.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  Sampler s(seeded(14));
  for (int i = 0; i < 200; ++i) {
    std::vector<float> l = {nan, 0.0f, -inf, 0.0f};
    const int32_t t = s.sample(l, {});
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  // A tiny temperature overflows the scaled logits; the limit is greedy.
  SamplingParams cold = seeded(15);
  cold.temperature = 1e-30f;
  Sampler c(cold);
  std::vector<float> l = {1.0f, 3.0f, 2.0f};
  EXPECT_EQ(c.sample(l, {}), 1);
  // A single-token vocabulary.
  std::vector<float> one = {-5.0f};
  EXPECT_EQ(s.sample(one, {}), 0);
  std::vector<float> none;
  EXPECT_THROW(s.sample(none, {}), Error);
}

TEST(Sampler, InvalidParamsNameTheParameter) {
  SamplingParams p;
  p.temperature = -1.0f;
  expect_invalid(p, "temperature", "-1");
  p = {};
  p.temperature = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(p, "temperature", "nan");
  p = {};
  p.top_p = 0.0f;
  expect_invalid(p, "top_p", "0");
  p = {};
  p.top_p = 1.5f;
  expect_invalid(p, "top_p", "1.5");
  p = {};
  p.top_k = -3;
  expect_invalid(p, "top_k", "-3");
  p = {};
  p.min_p = 1.5f;
  expect_invalid(p, "min_p", "1.5");
  p = {};
  p.min_p = -0.1f;
  expect_invalid(p, "min_p", "-0.1");
  p = {};
  p.repetition_penalty = 0.0f;
  expect_invalid(p, "repetition_penalty", "0");
  // Boundaries that are valid.
  p = {};
  p.temperature = 0.0f;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.top_k = 0;
  EXPECT_NO_THROW(validate(p));
  p.min_p = 0.0f;
  p.repetition_penalty = 0.5f;
  EXPECT_NO_THROW(validate(p));
}

// Not a benchmark, a guard against accidental O(V log V) per step: prints the time per draw.
TEST(Sampler, LargeVocabularyCost) {
  const size_t V = 128256;
  struct Case { const char* name; int top_k; float top_p; float stddev; };
  const Case cases[] = {{"top_k=50 top_p=0.9", 50, 0.9f, 3.0f},
                        {"top_p=0.9 peaked", 0, 0.9f, 3.0f},
                        {"top_p=0.95 flat", 0, 0.95f, 0.1f},
                        {"plain", 0, 1.0f, 3.0f}};
  for (const Case& c : cases) {
    SamplingParams p = seeded(16);
    p.temperature = 0.8f;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    Sampler s(p);
    const auto logits = random_logits(17, V, c.stddev);
    std::vector<float> l;
    const int reps = 20;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
      l = logits;
      const int32_t t = s.sample(l, {});
      ASSERT_GE(t, 0);
      ASSERT_LT(t, static_cast<int32_t>(V));
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
        reps;
    std::printf("[ measured ] sample V=%zu %s: %.3f ms\n", V, c.name, ms);
  }
}

}  // namespace
}  // namespace fdpp

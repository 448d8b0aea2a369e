// The GPU sampler against host references: greedy equals runtime::argmax; top-k, top-p and min-p
// tokens always lie in the host-computed kept set; on small vocabularies the frequencies over many steps
// match the renormalised distribution; (seed, step) determines the token; non-finite logits and
// ties follow the documented rules.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <vector>

#include "backend/cuda/sampling/sampling.cuh"
#include "gpu/gpu_test_util.h"
#include "runtime/sampler.h"

namespace fdpp {
namespace {

using cuda::DeviceSamplingRow;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// A device copy of host data of any trivially copyable type.
template <typename T>
struct DeviceBuffer {
  T* dev = nullptr;
  size_t size = 0;
  explicit DeviceBuffer(const std::vector<T>& host) : size(host.size()) {
    EXPECT_EQ(cudaMalloc(&dev, std::max<size_t>(size, 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(dev, host.data(), size * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(dev); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  std::vector<T> download() const {
    std::vector<T> out(size);
    EXPECT_EQ(cudaMemcpy(out.data(), dev, size * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
};

// Samples logits [rows.size(), vocab] with one parameter row each; returns the tokens [rows].
// blocks_per_row 0: the launcher's choice.
std::vector<int32_t> sample_on_device(const std::vector<float>& logits, int64_t vocab,
                                      const std::vector<DeviceSamplingRow>& rows, int blocks_per_row = 0) {
  const auto num_rows = static_cast<int64_t>(rows.size());
  EXPECT_EQ(static_cast<int64_t>(logits.size()), num_rows * vocab);
  DeviceBuffer<float> d_logits(logits);
  DeviceBuffer<DeviceSamplingRow> d_rows(rows);
  DeviceBuffer<int32_t> d_tokens(std::vector<int32_t>(rows.size(), -1));
  cuda::SampleParams params{d_logits.dev, num_rows, vocab, d_rows.dev, d_tokens.dev};
  params.blocks_per_row = blocks_per_row;
  const Status st = cuda::launch_sample(params, nullptr);
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return d_tokens.download();
}

// The same logits [vocab] repeated in every row.
std::vector<float> repeat_rows(const std::vector<float>& row, size_t num_rows) {
  std::vector<float> out;
  out.reserve(row.size() * num_rows);
  for (size_t r = 0; r < num_rows; ++r) out.insert(out.end(), row.begin(), row.end());
  return out;
}

std::vector<float> normal_logits(std::mt19937& rng, size_t n, float stddev) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

DeviceSamplingRow row_params(float temperature, int32_t top_k, float top_p, uint64_t seed, uint64_t step) {
  return {temperature, top_k, top_p, seed, step};
}

std::span<const float> row_of(const std::vector<float>& logits, int64_t vocab, size_t r) {
  return std::span<const float>(logits).subspan(r * static_cast<size_t>(vocab), static_cast<size_t>(vocab));
}

// Ids of one row by logit, largest first (lower id first on ties): the order of z for any
// temperature > 0, since dividing by it keeps the order.
std::vector<int32_t> descending_order(std::span<const float> logits) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  return ids;
}

// A superset of the ids the host sampler could draw (no NaN in logits): top-k with its ties, then
// the top-p prefix of the probabilities sorted descending, widened by top_p_slack of probability
// and by the ties of its last value: the device's fixed-point masses may place a boundary that
// sits within rounding of top_p one token later; then min-p (p >= min_p * p_max), loosened by the
// same relative slack.
std::vector<bool> host_kept_superset(std::span<const float> logits, const std::vector<int32_t>& order,
                                     float temperature, int32_t top_k, float top_p, double top_p_slack,
                                     float min_p = 0.0f) {
  const size_t V = logits.size();
  auto z = [&](size_t j) { return logits[static_cast<size_t>(order[j])] / temperature; };
  size_t n = V;
  if (top_k > 0 && static_cast<size_t>(top_k) < V) {
    n = static_cast<size_t>(top_k);
    while (n < V && z(n) == z(n - 1)) ++n;  // ties at the k-th value stay
  }
  std::vector<double> p(n);
  double sum = 0;
  for (size_t j = 0; j < n; ++j) sum += p[j] = std::exp(double(z(j)) - double(z(0)));
  size_t keep = n;
  if (top_p < 1.0f) {
    double cumulative = 0;
    for (size_t j = 0; j < n; ++j) {
      cumulative += p[j] / sum;
      if (cumulative >= top_p + top_p_slack) {
        keep = j + 1;
        break;
      }
    }
    while (keep < n && z(keep) == z(keep - 1)) ++keep;
  }
  while (keep > 1 && p[keep - 1] < double(min_p) * (1.0 - top_p_slack)) --keep;  // p[0] = 1 = p_max
  std::vector<bool> kept(V, false);
  for (size_t j = 0; j < keep; ++j) kept[static_cast<size_t>(order[j])] = true;
  return kept;
}

// Frequencies of tokens over `draws` rows of the same logits, steps 0..draws-1.
std::vector<double> frequencies(const std::vector<float>& logits, DeviceSamplingRow params, int draws) {
  std::vector<DeviceSamplingRow> rows(static_cast<size_t>(draws), params);
  for (int i = 0; i < draws; ++i) rows[static_cast<size_t>(i)].step = static_cast<uint64_t>(i);
  const auto tokens = sample_on_device(repeat_rows(logits, rows.size()), static_cast<int64_t>(logits.size()), rows);
  std::vector<double> freq(logits.size(), 0.0);
  for (int32_t t : tokens) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, static_cast<int32_t>(logits.size()));
    if (t >= 0 && t < static_cast<int32_t>(logits.size())) freq[static_cast<size_t>(t)] += 1.0 / draws;
  }
  return freq;
}

// Largest |frequency - expected| with expected = weights normalised. With 40000 draws one
// frequency's standard deviation is <= 0.0025, so the 0.01 bound used below is >= 4 sigma.
double max_abs_diff(const std::vector<double>& freq, std::vector<double> weights) {
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  double worst = 0;
  for (size_t i = 0; i < freq.size(); ++i) worst = std::max(worst, std::abs(freq[i] - weights[i] / total));
  return worst;
}

constexpr int kDraws = 40000;

TEST(GpuSampling, GreedyMatchesHostArgmax) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(11);
  for (int64_t vocab : {8, 1000, 32000, 128256, 151936}) {
    for (size_t num_rows : {1, 3, 64}) {
      std::vector<float> logits = normal_logits(rng, num_rows * static_cast<size_t>(vocab), 3.0f);
      std::vector<DeviceSamplingRow> rows;
      for (size_t r = 0; r < num_rows; ++r) {
        float* row = logits.data() + r * static_cast<size_t>(vocab);
        const auto best = std::max_element(row, row + vocab) - row;
        // Ties with the maximum before and after it: the lowest index must win.
        if (r % 2 == 1) row[rng() % static_cast<uint32_t>(vocab)] = row[best];
        if (r % 4 == 2) row[vocab - 1] = row[best];
        if (r % 5 == 1) row[0] = row[rng() % static_cast<uint32_t>(vocab)] = kNaN;  // NaN never wins
        if (r % 7 == 3) std::fill(row, row + vocab, kNaN);                           // all NaN: 0
        rows.push_back(row_params(r % 2 == 0 ? 0.0f : -1.0f, 5, 0.5f, r, r));         // filters ignored
      }
      const auto tokens = sample_on_device(logits, vocab, rows);
      for (size_t r = 0; r < num_rows; ++r)
        ASSERT_EQ(tokens[r], argmax(row_of(logits, vocab, r))) << "V=" << vocab << " R=" << num_rows << " row " << r;
    }
  }
}

TEST(GpuSampling, TopKOneAndTinyTopPAreGreedy) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(12);
  for (int64_t vocab : {1000, 32000, 151936}) {
    const size_t num_rows = 64;
    const auto logits = normal_logits(rng, num_rows * static_cast<size_t>(vocab), 2.0f);
    std::vector<DeviceSamplingRow> rows;
    for (size_t r = 0; r < num_rows; ++r) {
      const float temperature = r % 3 == 0 ? 0.5f : r % 3 == 1 ? 1.0f : 3.0f;
      rows.push_back(r % 2 == 0 ? row_params(temperature, 1, 1.0f, 100 + r, r)
                                : row_params(temperature, 0, 1e-6f, 100 + r, r));
    }
    const auto tokens = sample_on_device(logits, vocab, rows);
    for (size_t r = 0; r < num_rows; ++r)
      ASSERT_EQ(tokens[r], argmax(row_of(logits, vocab, r))) << "V=" << vocab << " row " << r;
  }
}

TEST(GpuSampling, TopKTokensAreAmongTheKLargest) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(13);
  for (int64_t vocab : {32000, 128256}) {
    const size_t num_rows = 64;
    const auto logits = normal_logits(rng, num_rows * static_cast<size_t>(vocab), 1.0f);
    for (int32_t k : {2, 10, 50, 1000, 5000}) {
      std::vector<float> kth_largest(num_rows);  // of the logits, per row
      for (size_t r = 0; r < num_rows; ++r) {
        const auto row = row_of(logits, vocab, r);
        std::vector<float> sorted(row.begin(), row.end());
        std::nth_element(sorted.begin(), sorted.begin() + (k - 1), sorted.end(), std::greater<float>());
        kth_largest[r] = sorted[static_cast<size_t>(k - 1)];
      }
      std::vector<std::set<int32_t>> drawn(num_rows);
      for (uint64_t step = 0; step < 4; ++step) {
        std::vector<DeviceSamplingRow> rows;
        for (size_t r = 0; r < num_rows; ++r) rows.push_back(row_params(r % 2 ? 1.5f : 0.8f, k, 1.0f, r, step));
        const auto tokens = sample_on_device(logits, vocab, rows);
        for (size_t r = 0; r < num_rows; ++r) {
          ASSERT_GE(tokens[r], 0);
          // Compared as z = logit / T, where the kept set is defined (dividing keeps the order).
          const float temperature = rows[r].temperature;
          ASSERT_GE(logits[r * static_cast<size_t>(vocab) + static_cast<size_t>(tokens[r])] / temperature,
                    kth_largest[r] / temperature)
              << "V=" << vocab << " k=" << k << " row " << r;
          drawn[r].insert(tokens[r]);
        }
      }
      const auto varied = std::count_if(drawn.begin(), drawn.end(), [](const auto& d) { return d.size() > 1; });
      EXPECT_GT(varied, static_cast<ptrdiff_t>(num_rows / 2)) << "k=" << k << ": most rows should vary with the step";
    }
  }
}

// 64 rows of 128256 N(0, 2.5) logits and each row's ids by logit, for the kept-set tests.
struct WideRows {
  static constexpr int64_t kVocab = 128256;
  static constexpr size_t kRows = 64;
  std::vector<float> logits;
  std::vector<std::vector<int32_t>> orders;

  explicit WideRows(unsigned seed) {
    std::mt19937 rng(seed);
    logits = normal_logits(rng, kRows * static_cast<size_t>(kVocab), 2.5f);
    for (size_t r = 0; r < kRows; ++r) orders.push_back(descending_order(row(r)));
  }
  std::span<const float> row(size_t r) const { return row_of(logits, kVocab, r); }
  std::vector<std::vector<bool>> kept_sets(const DeviceSamplingRow& p, double slack) const {
    std::vector<std::vector<bool>> out;
    for (size_t r = 0; r < kRows; ++r)
      out.push_back(host_kept_superset(row(r), orders[r], p.temperature, p.top_k, p.top_p, slack, p.min_p));
    return out;
  }
  // Samples every row at steps 0-2 with p (row r seeded seed_step * r + seed_base) and asserts that
  // each token lies in kept[r].
  void expect_tokens_inside(const std::vector<std::vector<bool>>& kept, DeviceSamplingRow p, uint64_t seed_step,
                            uint64_t seed_base) const {
    for (uint64_t step = 0; step < 3; ++step) {
      std::vector<DeviceSamplingRow> rows(kRows, p);
      for (size_t r = 0; r < kRows; ++r) {
        rows[r].seed = seed_step * r + seed_base;
        rows[r].step = step;
      }
      const auto tokens = sample_on_device(logits, kVocab, rows);
      for (size_t r = 0; r < kRows; ++r) {
        ASSERT_TRUE(tokens[r] >= 0 && kept[r][static_cast<size_t>(tokens[r])])
            << "T=" << p.temperature << " k=" << p.top_k << " p=" << p.top_p << " min-p=" << p.min_p << " row " << r
            << " token " << tokens[r] << " kept " << std::count(kept[r].begin(), kept[r].end(), true);
      }
    }
  }
};

TEST(GpuSampling, TopPTokensAreInsideTheHostNucleus) {
  FDPP_REQUIRE_GPU();
  const WideRows wide(14);
  struct Case { float temperature; int32_t top_k; float top_p; };
  for (const Case c : {Case{0.8f, 0, 0.5f}, Case{1.0f, 0, 0.9f}, Case{1.3f, 0, 0.99f}, Case{1.0f, 40, 0.6f}}) {
    const DeviceSamplingRow p = row_params(c.temperature, c.top_k, c.top_p, 0, 0);
    wide.expect_tokens_inside(wide.kept_sets(p, 1e-5), p, 7, 0);
  }
}

// min-p on llama.cpp's default set (T 0.8, top-k 40, top-p 0.95, min-p 0.05) and alone, on a
// 128k vocabulary: every token is one the host could draw, and min-p cut the set where it binds.
TEST(GpuSampling, MinPTokensAreInsideTheHostSet) {
  FDPP_REQUIRE_GPU();
  const WideRows wide(15);
  // binds: min-p keeps fewer ids than the other filters on most rows (top-k 40 may already be
  // the tighter bound in llama.cpp's set).
  struct Case { float temperature; int32_t top_k; float top_p; float min_p; bool binds; };
  for (const Case c : {Case{0.8f, 40, 0.95f, 0.05f, false}, Case{1.0f, 0, 1.0f, 0.1f, true},
                       Case{1.5f, 0, 0.9f, 0.02f, true}}) {
    DeviceSamplingRow p = row_params(c.temperature, c.top_k, c.top_p, 0, 0);
    const auto without = wide.kept_sets(p, 0.0);
    p.min_p = c.min_p;
    const auto kept = wide.kept_sets(p, 1e-5);
    size_t cut_rows = 0;  // rows where min-p kept fewer ids than the other filters
    for (size_t r = 0; r < WideRows::kRows; ++r)
      if (std::count(kept[r].begin(), kept[r].end(), true) < std::count(without[r].begin(), without[r].end(), true))
        ++cut_rows;
    if (c.binds) EXPECT_GT(cut_rows, WideRows::kRows / 2) << "min-p=" << c.min_p << " should bind on these rows";
    wide.expect_tokens_inside(kept, p, 11, 1);
  }
}

// Sixteen known probabilities, largest first (sum 1), and their logits.
std::vector<double> known_probabilities() {
  return {0.30, 0.20, 0.15, 0.10, 0.08, 0.05, 0.04, 0.03, 0.02, 0.01, 0.004, 0.003, 0.002, 0.002, 0.0015, 0.0015};
}
std::vector<float> log_of(const std::vector<double>& p) {
  std::vector<float> logits;
  for (double x : p) logits.push_back(static_cast<float>(std::log(x)));
  return logits;
}

// Known probabilities: min-p's threshold is relative to the most likely token (0.30), and it
// combines with top-k and top-p by intersection, as the host applies it after them.
TEST(GpuSampling, MinPFrequenciesMatchTheRenormalisedSet) {
  FDPP_REQUIRE_GPU();
  const std::vector<double> p = known_probabilities();
  const std::vector<float> logits = log_of(p);
  struct Case { int32_t top_k; float top_p; float min_p; size_t kept; };
  // 0.2 * 0.30 = 0.06 keeps 5; top-p 0.8 keeps 5 and min-p 0.6 (0.18) 2; top-k 3 and min-p 0.4
  // (0.12) keep 3; min-p 1 keeps the most likely token alone.
  for (const Case c : {Case{0, 1.0f, 0.2f, 5}, Case{0, 0.8f, 0.6f, 2}, Case{3, 1.0f, 0.4f, 3}, Case{0, 1.0f, 1.0f, 1}}) {
    DeviceSamplingRow params = row_params(1.0f, c.top_k, c.top_p, 45, 0);
    params.min_p = c.min_p;
    const auto freq = frequencies(logits, params, kDraws);
    std::vector<double> want(p.size(), 0.0);
    std::copy(p.begin(), p.begin() + static_cast<ptrdiff_t>(c.kept), want.begin());
    for (size_t i = c.kept; i < p.size(); ++i) EXPECT_EQ(freq[i], 0.0) << "min-p=" << c.min_p << " token " << i;
    const double diff = max_abs_diff(freq, want);
    std::printf("[ measured ] min-p %.1f, top-k %d, top-p %.1f on V=16: max |frequency - p| = %.4f\n", c.min_p,
                c.top_k, c.top_p, diff);
    EXPECT_LT(diff, 0.01) << "min-p=" << c.min_p;
  }
}

TEST(GpuSampling, FrequenciesMatchTheRenormalisedNucleus) {
  FDPP_REQUIRE_GPU();
  // Known probabilities; top_p = 0.8 keeps {0..4} (cumulative 0.30 0.50 0.65 0.75 0.83).
  const std::vector<double> p = known_probabilities();
  const std::vector<float> logits = log_of(p);
  const auto freq = frequencies(logits, row_params(1.0f, 0, 0.8f, 42, 0), kDraws);
  std::vector<double> nucleus(p.size(), 0.0);
  std::copy(p.begin(), p.begin() + 5, nucleus.begin());
  for (size_t i = 5; i < p.size(); ++i) EXPECT_EQ(freq[i], 0.0) << "token " << i << " is outside the nucleus";
  const double diff = max_abs_diff(freq, nucleus);
  std::printf("[ measured ] top-p 0.8 on V=16: max |frequency - p| = %.4f over %d draws\n", diff, kDraws);
  EXPECT_LT(diff, 0.01);

  // No filter: the full distribution.
  const double full = max_abs_diff(frequencies(logits, row_params(1.0f, 0, 1.0f, 43, 0), kDraws), p);
  EXPECT_LT(full, 0.01);
  // top_k = 3: {0, 1, 2} renormalised.
  std::vector<double> top3(p.size(), 0.0);
  std::copy(p.begin(), p.begin() + 3, top3.begin());
  EXPECT_LT(max_abs_diff(frequencies(logits, row_params(1.0f, 3, 1.0f, 44, 0), kDraws), top3), 0.01);
}

TEST(GpuSampling, TemperatureReshapesTheDistribution) {
  FDPP_REQUIRE_GPU();
  const std::vector<float> logits = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f};
  std::vector<double> first_token;
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    std::vector<double> want;
    for (float l : logits) want.push_back(std::exp(double(l) / temperature));
    const auto freq = frequencies(logits, row_params(temperature, 0, 1.0f, 9, 0), kDraws);
    const double diff = max_abs_diff(freq, want);
    std::printf("[ measured ] T=%.1f on V=8: max |frequency - p| = %.4f\n", temperature, diff);
    EXPECT_LT(diff, 0.01) << "T=" << temperature;
    first_token.push_back(freq[0]);
  }
  EXPECT_GT(first_token[0], first_token[1]);  // colder: the top token more likely
  EXPECT_GT(first_token[1], first_token[2]);
}

TEST(GpuSampling, SeedAndStepDetermineTheToken) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(15);
  const int64_t vocab = 32000;
  const auto row = normal_logits(rng, static_cast<size_t>(vocab), 1.0f);
  const size_t num_rows = 64;
  const auto logits = repeat_rows(row, num_rows);
  std::vector<DeviceSamplingRow> by_step, same, other_seed;
  for (size_t r = 0; r < num_rows; ++r) {
    by_step.push_back(row_params(1.0f, 0, 0.95f, 7, r));
    same.push_back(row_params(1.0f, 0, 0.95f, 7, 5));
    other_seed.push_back(row_params(1.0f, 0, 0.95f, 8, r));
  }
  const auto a = sample_on_device(logits, vocab, by_step);
  EXPECT_EQ(a, sample_on_device(logits, vocab, by_step));  // run to run
  const auto b = sample_on_device(logits, vocab, same);
  for (size_t r = 0; r < num_rows; ++r) EXPECT_EQ(b[r], a[5]) << "row " << r << ": the row index must not matter";
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), num_rows / 2) << "steps should give fresh draws";
  EXPECT_NE(a, sample_on_device(logits, vocab, other_seed));
}

TEST(GpuSampling, NonFiniteLogitsFollowTheHostRules) {
  FDPP_REQUIRE_GPU();
  const int64_t vocab = 1000;
  std::mt19937 rng(16);
  const auto base = normal_logits(rng, static_cast<size_t>(vocab), 1.0f);
  std::vector<float> logits;
  std::vector<DeviceSamplingRow> rows;
  std::vector<int32_t> want;  // -1: any token but the ones the row says
  auto add = [&](std::vector<float> row, DeviceSamplingRow params, int32_t expected) {
    logits.insert(logits.end(), row.begin(), row.end());
    rows.push_back(params);
    want.push_back(expected);
  };
  const auto sampling = row_params(1.0f, 0, 1.0f, 3, 0);
  add(std::vector<float>(vocab, kNaN), sampling, 0);                       // all NaN: 0
  add(std::vector<float>(vocab, -kInf), sampling, 0);                      // all -inf: 0
  add(std::vector<float>(vocab, -kInf), row_params(0.0f, 0, 1.0f, 3, 0), 0);
  auto with_inf = base;
  with_inf[7] = with_inf[3] = kInf;                                        // +inf: its lowest id
  add(with_inf, sampling, 3);
  auto mixed = std::vector<float>(vocab, kNaN);
  mixed[500] = -kInf;
  mixed[600] = 1.0f;
  mixed[700] = 1.0f;
  add(mixed, row_params(1.0f, 0, 0.4f, 3, 0), 600);                        // ties: lowest id first
  add(mixed, row_params(0.0f, 0, 1.0f, 3, 0), 600);
  const auto tokens = sample_on_device(logits, vocab, rows);
  for (size_t r = 0; r < want.size(); ++r) EXPECT_EQ(tokens[r], want[r]) << "case " << r;

  // NaN and -inf ids are never drawn, whatever the step.
  auto holes = base;
  for (size_t i = 0; i < holes.size(); i += 3) holes[i] = i % 2 ? kNaN : -kInf;
  std::vector<DeviceSamplingRow> steps;
  for (uint64_t s = 0; s < 256; ++s) steps.push_back(row_params(2.0f, 0, 1.0f, 4, s));
  for (int32_t t : sample_on_device(repeat_rows(holes, steps.size()), vocab, steps))
    EXPECT_NE(t % 3, 0) << "token " << t << " has a NaN or -inf logit";
}

TEST(GpuSampling, TiesAtTheBoundary) {
  FDPP_REQUIRE_GPU();
  // top-p: four equal tokens of p = e / (4e + 4) = 0.18 each; 0.3 needs two, the lowest ids.
  const std::vector<float> four_equal = {1, 1, 1, 1, 0, 0, 0, 0};
  const auto f = frequencies(four_equal, row_params(1.0f, 0, 0.3f, 5, 0), 4000);
  EXPECT_NEAR(f[0] + f[1], 1.0, 1e-9);
  EXPECT_GT(f[0], 0.4);
  EXPECT_GT(f[1], 0.4);
  // top-k: the k-th value is tied, every tie stays (as the host and HF).
  const std::vector<float> tied_kth = {3, 2, 2, 2, 1, 0, 0, 0};
  const auto g = frequencies(tied_kth, row_params(1.0f, 2, 1.0f, 6, 0), 4000);
  EXPECT_NEAR(g[0] + g[1] + g[2] + g[3], 1.0, 1e-9);
  EXPECT_GT(g[3], 0.05);

  // A whole large row tied: top_p = 0.5 keeps exactly the lower half of the ids; top_k keeps all.
  const int64_t vocab = 151936;
  const size_t num_rows = 64;
  const auto flat = repeat_rows(std::vector<float>(vocab, 0.25f), num_rows);
  std::vector<DeviceSamplingRow> half, topk;
  for (size_t r = 0; r < num_rows; ++r) {
    half.push_back(row_params(1.0f, 0, 0.5f, 1, r));
    topk.push_back(row_params(1.0f, 100, 1.0f, 1, r));
  }
  const auto h = sample_on_device(flat, vocab, half);
  EXPECT_LT(*std::max_element(h.begin(), h.end()), vocab / 2);
  EXPECT_GT(*std::max_element(h.begin(), h.end()), vocab / 4);
  const auto k = sample_on_device(flat, vocab, topk);
  EXPECT_GT(*std::max_element(k.begin(), k.end()), vocab / 2);
}

// More rows than one launch's grid holds (65535): every row still gets its own token.
TEST(GpuSampling, RowsBeyondOneLaunchAreAllSampled) {
  FDPP_REQUIRE_GPU();
  const int64_t vocab = 8;
  const size_t num_rows = 70000;
  std::mt19937 rng(16);
  const auto logits = normal_logits(rng, num_rows * static_cast<size_t>(vocab), 1.0f);
  const std::vector<DeviceSamplingRow> rows(num_rows, row_params(0.0f, 0, 1.0f, 0, 0));
  const auto tokens = sample_on_device(logits, vocab, rows);
  for (size_t r = 0; r < num_rows; ++r)
    ASSERT_EQ(tokens[r], argmax(row_of(logits, vocab, r))) << "row " << r;
}

// The repetition penalty on the device: the penalised logits are the host's bit for bit
// (apply_repetition_penalty), greedy rows then take the host's token, and sampled rows draw inside
// the kept set of the penalised logits. Penalties above and below 1, ids on positive and negative
// logits (and one NaN), rows without a penalty untouched.
TEST(GpuSampling, RepetitionPenaltyMatchesTheHost) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(17);
  const int64_t vocab = 128256;
  const size_t num_rows = 12;
  auto logits = normal_logits(rng, num_rows * static_cast<size_t>(vocab), 3.0f);
  logits[5 * static_cast<size_t>(vocab) + 77] = kNaN;
  std::vector<DeviceSamplingRow> rows;
  std::vector<int32_t> ids;
  std::vector<int64_t> offsets = {0};
  std::vector<std::vector<float>> want;  // the host's penalised rows
  for (size_t r = 0; r < num_rows; ++r) {
    const float penalty = r % 4 == 3 ? 1.0f : r % 2 == 0 ? 1.3f : 0.8f;
    rows.push_back(row_params(r < num_rows / 2 ? 0.0f : 0.9f, r < num_rows / 2 ? 0 : 40, 0.9f, 3 * r, 1));
    rows.back().repetition_penalty = penalty;
    // The row's previous tokens: its top few ids (so the penalty moves the argmax) and random ones.
    const auto order = descending_order(row_of(logits, vocab, r));
    std::set<int32_t> previous(order.begin(), order.begin() + 3);
    while (previous.size() < 200) previous.insert(static_cast<int32_t>(rng() % vocab));
    if (r == 5) previous.insert(77);
    ids.insert(ids.end(), previous.begin(), previous.end());
    offsets.push_back(static_cast<int64_t>(ids.size()));
    const auto row = row_of(logits, vocab, r);
    want.emplace_back(row.begin(), row.end());
    const std::vector<int32_t> history(previous.begin(), previous.end());
    apply_repetition_penalty(want.back(), history, penalty);
  }
  DeviceBuffer<float> d_logits(logits);
  DeviceBuffer<DeviceSamplingRow> d_rows(rows);
  DeviceBuffer<int32_t> d_tokens(std::vector<int32_t>(num_rows, -1));
  DeviceBuffer<int32_t> d_ids(ids);
  DeviceBuffer<int64_t> d_offsets(offsets);
  cuda::SampleParams params{d_logits.dev, static_cast<int64_t>(num_rows), vocab, d_rows.dev, d_tokens.dev};
  params.penalty_ids = d_ids.dev;
  params.penalty_offsets = d_offsets.dev;
  const Status st = cuda::launch_sample(params, nullptr);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto penalised = d_logits.download();
  const auto tokens = d_tokens.download();
  for (size_t r = 0; r < num_rows; ++r) {
    const auto got = row_of(penalised, vocab, r);
    for (int64_t i = 0; i < vocab; ++i) {
      const float a = got[static_cast<size_t>(i)], b = want[r][static_cast<size_t>(i)];
      // NaN stays NaN (its payload may differ between the CPU and the GPU); the rest bit for bit.
      ASSERT_TRUE((std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0)
          << "row " << r << " id " << i << ": " << a << " vs host " << b;
    }
    if (rows[r].temperature == 0.0f) {
      EXPECT_EQ(tokens[r], argmax(want[r])) << "greedy row " << r;
    } else {
      const auto kept = host_kept_superset(want[r], descending_order(want[r]), rows[r].temperature, rows[r].top_k,
                                           rows[r].top_p, 1e-5);
      EXPECT_TRUE(tokens[r] >= 0 && kept[static_cast<size_t>(tokens[r])]) << "sampled row " << r;
    }
  }
}

// A row's token is a pure function of its logits, parameters, seed and step: every cluster size
// (1-8 blocks, powers of two or not, slices of a 128k row or of 13 ids) draws the same tokens, for
// greedy rows, every filter and ties at a top-p boundary.
TEST(GpuSampling, EveryClusterSizeDrawsTheSameTokens) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(18);
  for (const int64_t vocab : {int64_t{128256}, int64_t{13}}) {
    const size_t num_rows = 24;
    auto logits = normal_logits(rng, num_rows * static_cast<size_t>(vocab), 2.0f);
    for (size_t i = 0; i < static_cast<size_t>(vocab); i += 3) logits[i] = 1.5f;  // row 0: many ties
    std::vector<DeviceSamplingRow> rows;
    for (size_t r = 0; r < num_rows; ++r) {
      const float temperature = r % 6 == 0 ? 0.0f : 0.6f + 0.1f * static_cast<float>(r % 5);
      const int32_t top_k = r % 3 == 0 ? 40 : 0;
      const float top_p = r % 4 == 1 ? 0.9f : 1.0f;
      rows.push_back(row_params(temperature, top_k, top_p, 100 + r, r));
      rows.back().min_p = r % 5 == 2 ? 0.05f : 0.0f;
    }
    const auto want = sample_on_device(logits, vocab, rows, 1);
    for (int blocks = 2; blocks <= cuda::kMaxSampleBlocksPerRow; ++blocks)
      EXPECT_EQ(sample_on_device(logits, vocab, rows, blocks), want) << blocks << " blocks per row, vocab " << vocab;
    EXPECT_EQ(sample_on_device(logits, vocab, rows), want) << "the launcher's choice, vocab " << vocab;
  }
}

TEST(GpuSampling, LaunchRejectsBadShapes) {
  // Checked before any CUDA call: runs without a device too.
  int32_t token = 0;
  DeviceSamplingRow params;
  float logit = 0.0f;
  EXPECT_TRUE(cuda::launch_sample({&logit, 0, 10, &params, &token}, nullptr).is_ok());
  EXPECT_EQ(cuda::launch_sample({&logit, 1, 0, &params, &token}, nullptr).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cuda::launch_sample({&logit, 1, cuda::kMaxSampleVocab + 1, &params, &token}, nullptr).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(cuda::launch_sample({nullptr, 1, 10, &params, &token}, nullptr).code(), ErrorCode::kInvalidArgument);
  cuda::SampleParams half_penalty{&logit, 1, 10, &params, &token};
  const int32_t id = 0;
  half_penalty.penalty_ids = &id;  // without offsets
  EXPECT_EQ(cuda::launch_sample(half_penalty, nullptr).code(), ErrorCode::kInvalidArgument);
  for (int blocks : {-1, cuda::kMaxSampleBlocksPerRow + 1}) {
    cuda::SampleParams bad_cluster{&logit, 1, 10, &params, &token};
    bad_cluster.blocks_per_row = blocks;
    EXPECT_EQ(cuda::launch_sample(bad_cluster, nullptr).code(), ErrorCode::kInvalidArgument) << blocks;
  }
}

}  // namespace
}  // namespace fdpp

// The CPU reference ops against independent float64 computations on random inputs, plus one
// hand-computed case per op. Each comparison prints the error it measured ("[ measured ]").
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "core/dtype.h"
#include "core/tensor.h"
#include "fdpp/status.h"

namespace fdpp {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> normal(std::mt19937& gen, size_t n, float stddev = 1.0f) {
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Values stored in a float dtype, with the exact value of every stored element.
struct Stored {
  std::vector<uint16_t> half;  // F16 / BF16 storage
  std::vector<float> f32;      // F32 storage
  std::vector<double> exact;   // what each element holds
  DType dtype = DType::kF32;

  void* data() { return dtype == DType::kF32 ? static_cast<void*>(f32.data()) : half.data(); }
  TensorView view(std::initializer_list<int64_t> shape) {
    return TensorView::contiguous(data(), dtype, shape);
  }
};

Stored store(const std::vector<float>& values, DType dtype) {
  Stored s;
  s.dtype = dtype;
  for (float v : values) {
    if (dtype == DType::kF32) {
      s.f32.push_back(v);
      s.exact.push_back(v);
    } else if (dtype == DType::kF16) {
      s.half.push_back(float_to_half(v));
      s.exact.push_back(half_to_float(s.half.back()));
    } else {
      s.half.push_back(float_to_bf16(v));
      s.exact.push_back(bf16_to_float(s.half.back()));
    }
  }
  return s;
}

// max over elements of |got - ref| / denom[i]
double max_scaled_error(const std::vector<float>& got, const std::vector<double>& ref,
                        const std::vector<double>& denom) {
  EXPECT_EQ(got.size(), ref.size());
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();  // std::max would skip a NaN
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - ref[i]) /
                                std::max(denom[i], 1e-300));
  }
  return worst;
}

void report(const char* what, double err) { std::printf("[ measured ] %s: %.3g\n", what, err); }

template <typename F>
void expect_error(ErrorCode code, const char* must_mention, F&& f) {
  try {
    f();
    ADD_FAILURE() << "no fdpp::Error thrown";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(must_mention), std::string::npos) << e.what();
  }
}

const DType kFloatDTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

// ---------------------------------------------------------------------------------------------
// embed

TEST(CpuOps, EmbedGathersRows) {
  std::mt19937 gen(1);
  const int64_t V = 37, D = 13;
  const auto table = normal(gen, V * D);
  const std::vector<int32_t> tokens = {0, 36, 5, 5, 17, 0};
  for (DType dt : kFloatDTypes) {
    Stored s = store(table, dt);
    std::vector<float> out(tokens.size() * D, kNaN);
    cpu::embed(s.view({V, D}), tokens, out.data());
    for (size_t t = 0; t < tokens.size(); ++t) {
      for (int64_t d = 0; d < D; ++d) {
        ASSERT_EQ(out[t * D + d], s.exact[tokens[t] * D + d]) << dtype_name(dt);
      }
    }
  }
}

TEST(CpuOps, EmbedRejectsBadTokenIds) {
  std::vector<float> table(4 * 3, 1.0f), out(3 * 2);
  const TensorView view = TensorView::contiguous(table.data(), DType::kF32, {4, 3});
  const std::vector<int32_t> too_big = {0, 4};
  const std::vector<int32_t> negative = {-1};
  expect_error(ErrorCode::kOutOfRange, "token id 4",
               [&] { cpu::embed(view, too_big, out.data()); });
  expect_error(ErrorCode::kOutOfRange, "token id -1",
               [&] { cpu::embed(view, negative, out.data()); });
}

// ---------------------------------------------------------------------------------------------
// rmsnorm

TEST(CpuOps, RmsNormHandComputed) {
  // mean([9, 16]) = 12.5; 1/sqrt(12.5) = 0.28284271...
  std::vector<float> x = {3.0f, 4.0f}, w = {1.0f, 1.0f}, w2 = {2.0f, 0.5f}, out(2);
  cpu::rmsnorm(x.data(), TensorView::contiguous(w.data(), DType::kF32, {2}), 0.0f, 1, out.data());
  EXPECT_NEAR(out[0], 0.8485281374, 1e-7);
  EXPECT_NEAR(out[1], 1.1313708499, 1e-7);
  cpu::rmsnorm(x.data(), TensorView::contiguous(w2.data(), DType::kF32, {2}), 0.0f, 1, out.data());
  EXPECT_NEAR(out[0], 1.6970562748, 2e-7);
  EXPECT_NEAR(out[1], 0.5656854249, 1e-7);
  // eps keeps a zero row finite: 0 * rsqrt(eps) = 0.
  std::vector<float> zeros = {0.0f, 0.0f};
  cpu::rmsnorm(zeros.data(), TensorView::contiguous(w.data(), DType::kF32, {2}), 1e-5f, 1,
               out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 0.0f);
}

TEST(CpuOps, RmsNormMatchesFloat64) {
  std::mt19937 gen(2);
  const float eps = 1e-5f;
  double worst = 0;
  for (int64_t D : {1, 7, 1029, 4096}) {
    const int64_t rows = 7;
    auto x = normal(gen, rows * D, 3.0f);
    x[0] = 0.0f;
    const auto weight = normal(gen, D);
    for (DType dt : kFloatDTypes) {
      Stored w = store(weight, dt);
      std::vector<float> out(rows * D);
      cpu::rmsnorm(x.data(), w.view({D}), eps, rows, out.data());
      std::vector<double> ref(rows * D), denom(rows * D);
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < D; ++i) ss += double{x[r * D + i]} * x[r * D + i];
        const double inv = 1.0 / std::sqrt(ss / D + eps);
        for (int64_t i = 0; i < D; ++i) {
          ref[r * D + i] = x[r * D + i] * inv * w.exact[i];
          denom[r * D + i] = std::abs(ref[r * D + i]) + 1e-30;
        }
      }
      const double err = max_scaled_error(out, ref, denom);
      EXPECT_LT(err, 2e-6) << "D=" << D << " " << dtype_name(dt);
      worst = std::max(worst, err);
      // In place (x aliasing out) gives the same bits.
      std::vector<float> inplace = x;
      cpu::rmsnorm(inplace.data(), w.view({D}), eps, rows, inplace.data());
      EXPECT_EQ(inplace, out);
    }
  }
  report("rmsnorm max elementwise relative error", worst);
}

// ---------------------------------------------------------------------------------------------
// linear

TEST(CpuOps, LinearHandComputed) {
  // x = [1, 2]; w rows [1, 0], [0, 1], [1, 1]; bias [0.5, 0, -1]
  std::vector<float> x = {1.0f, 2.0f}, w = {1, 0, 0, 1, 1, 1}, b = {0.5f, 0.0f, -1.0f}, out(3);
  cpu::linear(x.data(), 1, TensorView::contiguous(w.data(), DType::kF32, {3, 2}),
              TensorView::contiguous(b.data(), DType::kF32, {3}), out.data());
  EXPECT_EQ(out, (std::vector<float>{1.5f, 2.0f, 2.0f}));
  cpu::linear(x.data(), 1, TensorView::contiguous(w.data(), DType::kF32, {3, 2}), TensorView{},
              out.data());
  EXPECT_EQ(out, (std::vector<float>{1.0f, 2.0f, 3.0f}));
}

TEST(CpuOps, LinearMatchesFloat64) {
  std::mt19937 gen(3);
  struct Shape { int64_t M, N, K; };
  const Shape shapes[] = {{1, 1, 1}, {1, 67, 129}, {3, 17, 13}, {5, 67, 129}, {17, 260, 37},
                          {2, 9, 1000}};
  double worst = 0;
  for (const Shape& sh : shapes) {
    const auto x = normal(gen, sh.M * sh.K);
    const auto wv = normal(gen, sh.N * sh.K, 0.1f);
    const auto bv = normal(gen, sh.N);
    for (DType dt : kFloatDTypes) {
      for (bool with_bias : {false, true}) {
        Stored w = store(wv, dt);
        Stored b = store(bv, dt);
        std::vector<float> out(sh.M * sh.N, kNaN);
        cpu::linear(x.data(), sh.M, w.view({sh.N, sh.K}),
                    with_bias ? b.view({sh.N}) : TensorView{}, out.data());
        // Error relative to sum |x_k w_nk| + |b_n|, the scale fp32 rounding works at.
        std::vector<double> ref(sh.M * sh.N), denom(sh.M * sh.N);
        for (int64_t m = 0; m < sh.M; ++m) {
          for (int64_t n = 0; n < sh.N; ++n) {
            double acc = with_bias ? b.exact[n] : 0.0;
            double mag = with_bias ? std::abs(b.exact[n]) : 0.0;
            for (int64_t k = 0; k < sh.K; ++k) {
              acc += double{x[m * sh.K + k]} * w.exact[n * sh.K + k];
              mag += std::abs(double{x[m * sh.K + k]} * w.exact[n * sh.K + k]);
            }
            ref[m * sh.N + n] = acc;
            denom[m * sh.N + n] = mag;
          }
        }
        const double err = max_scaled_error(out, ref, denom);
        EXPECT_LT(err, 1e-6) << sh.M << "x" << sh.N << "x" << sh.K << " " << dtype_name(dt)
                             << (with_bias ? " bias" : "");
        worst = std::max(worst, err);
      }
    }
  }
  report("linear max |err| / sum|x*w|", worst);
}

TEST(CpuOps, LinearRejectsBadShapes) {
  std::vector<float> w(6), b(2), x(2), out(3);
  expect_error(ErrorCode::kInvalidArgument, "bias", [&] {
    cpu::linear(x.data(), 1, TensorView::contiguous(w.data(), DType::kF32, {3, 2}),
                TensorView::contiguous(b.data(), DType::kF32, {2}), out.data());
  });
  expect_error(ErrorCode::kInvalidArgument, "rank-2", [&] {
    cpu::linear(x.data(), 1, TensorView::contiguous(w.data(), DType::kF32, {6}), TensorView{},
                out.data());
  });
}

// ---------------------------------------------------------------------------------------------
// RoPE

TEST(CpuOps, RopeHandComputed) {
  // head_dim 4: pairs (0, 2) and (1, 3). Pair 0 turns by pos * pi/2, pair 1 by 0.
  const float half_pi = static_cast<float>(std::numbers::pi / 2);
  const std::vector<float> inv_freq = {half_pi, 0.0f};
  std::vector<float> x = {1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4};
  const std::vector<int32_t> pos = {0, 1, 2};
  cpu::rope_rotate_half(x.data(), 3, 1, 4, pos, inv_freq);
  // pos 0: unchanged, exactly
  EXPECT_EQ(x[0], 1.0f);
  EXPECT_EQ(x[1], 2.0f);
  EXPECT_EQ(x[2], 3.0f);
  EXPECT_EQ(x[3], 4.0f);
  // pos 1: 90 degrees: (1, 3) -> (1*0 - 3*1, 3*0 + 1*1) = (-3, 1)
  EXPECT_NEAR(x[4], -3.0f, 1e-6);
  EXPECT_EQ(x[5], 2.0f);
  EXPECT_NEAR(x[6], 1.0f, 1e-6);
  EXPECT_EQ(x[7], 4.0f);
  // pos 2: 180 degrees: (-1, -3)
  EXPECT_NEAR(x[8], -1.0f, 1e-6);
  EXPECT_NEAR(x[10], -3.0f, 1e-6);
}

TEST(CpuOps, RopeMatchesFloat64) {
  std::mt19937 gen(4);
  std::uniform_int_distribution<int32_t> pos_dist(0, 8191);
  double worst = 0, worst_exact_angle = 0;
  for (int64_t hd : {8, 64, 128}) {
    const int64_t T = 11, H = 3, half = hd / 2;
    std::vector<float> inv_freq(half);
    for (int64_t i = 0; i < half; ++i) {
      inv_freq[i] = 1.0f / std::pow(10000.0f, static_cast<float>(2 * i) / static_cast<float>(hd));
    }
    std::vector<int32_t> pos(T);
    for (auto& p : pos) p = pos_dist(gen);
    pos[0] = 0;
    pos[1] = 1;
    const auto x0 = normal(gen, T * H * hd);
    auto x = x0;
    cpu::rope_rotate_half(x.data(), T, H, hd, pos, inv_freq);
    // Reference: the fp32 angle HF computes, then float64 trigonometry and rotation.
    std::vector<double> ref(x.size()), ref_exact(x.size()), denom(x.size());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < H; ++h) {
        const int64_t base = (t * H + h) * hd;
        double norm = 0;
        for (int64_t i = 0; i < hd; ++i) norm = std::max(norm, std::abs(double{x0[base + i]}));
        for (int64_t i = 0; i < half; ++i) {
          const float angle_f = static_cast<float>(pos[t]) * inv_freq[i];
          const double angle_d = static_cast<double>(pos[t]) * inv_freq[i];
          const double a = x0[base + i], b = x0[base + i + half];
          ref[base + i] = a * std::cos(double{angle_f}) - b * std::sin(double{angle_f});
          ref[base + i + half] = b * std::cos(double{angle_f}) + a * std::sin(double{angle_f});
          ref_exact[base + i] = a * std::cos(angle_d) - b * std::sin(angle_d);
          ref_exact[base + i + half] = b * std::cos(angle_d) + a * std::sin(angle_d);
          denom[base + i] = denom[base + i + half] = std::hypot(a, b);
        }
      }
    }
    const double err = max_scaled_error(x, ref, denom);
    EXPECT_LT(err, 1e-6) << "hd=" << hd;
    worst = std::max(worst, err);
    // Against the exact angle the fp32 angle costs up to ~pos * 2^-24 radians.
    const double err_exact = max_scaled_error(x, ref_exact, denom);
    EXPECT_LT(err_exact, 8192 * 6e-8 * 2) << "hd=" << hd;
    worst_exact_angle = std::max(worst_exact_angle, err_exact);
    // Position 0 is the identity, exactly.
    for (int64_t i = 0; i < H * hd; ++i) ASSERT_EQ(x[i], x0[i]);
  }
  report("rope max |err| / |(a, b)| (fp32 angle reference)", worst);
  report("rope max |err| / |(a, b)| (float64 angle, positions < 8192)", worst_exact_angle);
}

// ---------------------------------------------------------------------------------------------
// silu_mul, add_inplace

TEST(CpuOps, SiluMulHandComputed) {
  std::vector<float> g = {0.0f, 1.0f, -1.0f, -200.0f}, u = {5.0f, 2.0f, 1.0f, 1.0f}, out(4);
  cpu::silu_mul(g.data(), u.data(), 4, out.data());
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 2.0 / (1.0 + std::exp(-1.0)), 1e-7);  // 1.46211716
  EXPECT_NEAR(out[2], -1.0 / (1.0 + std::exp(1.0)), 1e-7);  // -0.26894142
  EXPECT_EQ(out[3], 0.0f);  // exp(200) overflows to inf; the limit is 0
}

TEST(CpuOps, SiluMulMatchesFloat64) {
  std::mt19937 gen(5);
  const int64_t n = 100003;
  auto g = normal(gen, n, 4.0f);
  const auto u = normal(gen, n);
  const float extremes[] = {-100, -80, -30, -1e-3f, 0, 1e-3f, 30, 80, 100};
  for (size_t i = 0; i < std::size(extremes); ++i) g[i] = extremes[i];
  std::vector<float> out(n);
  cpu::silu_mul(g.data(), u.data(), n, out.data());
  std::vector<double> ref(n), denom(n);
  for (int64_t i = 0; i < n; ++i) {
    ref[i] = double{g[i]} / (1.0 + std::exp(-double{g[i]})) * u[i];
    denom[i] = std::abs(ref[i]) + 1e-30;  // silu(-100) = -4e-42 underflows to -0
  }
  const double err = max_scaled_error(out, ref, denom);
  EXPECT_LT(err, 1e-6);
  report("silu_mul max elementwise relative error", err);
  // out may alias gate
  auto inplace = g;
  cpu::silu_mul(inplace.data(), u.data(), n, inplace.data());
  EXPECT_EQ(inplace, out);
}

TEST(CpuOps, AddInplace) {
  std::mt19937 gen(6);
  for (int64_t n : {1, 17, 70001}) {
    auto x = normal(gen, n);
    const auto y = normal(gen, n);
    auto expect = x;
    for (int64_t i = 0; i < n; ++i) expect[i] = x[i] + y[i];
    cpu::add_inplace(x.data(), y.data(), n);
    EXPECT_EQ(x, expect);
  }
}

// ---------------------------------------------------------------------------------------------
// paged KV cache and attention

// A batch over a paged cache: S sequences, each with `cached` slots already written and `fresh`
// new tokens in this batch. Block tables are a random permutation of the pool (non-contiguous),
// unused entries -1; the cache starts as NaN so reading any unwritten slot poisons the output.
struct Scenario {
  struct Seq { int cached, fresh; };
  int64_t Hq = 0, Hkv = 0, hd = 0;
  int32_t bs = 16, num_blocks = 0, mb = 0;
  std::vector<Seq> seqs;
  std::vector<int32_t> tables;               // [S, mb]
  std::vector<std::vector<float>> k_all, v_all;  // per sequence [len, Hkv, hd]
  std::vector<float> k_cache, v_cache;       // [num_blocks, bs, Hkv, hd]
  std::vector<int32_t> positions, token_seq;  // the new tokens
  std::vector<float> q, k_new, v_new;        // [T, Hq, hd], [T, Hkv, hd]

  cpu::PagedKv kv() {
    return {k_cache.data(), v_cache.data(), num_blocks, bs, static_cast<int32_t>(Hkv),
            static_cast<int32_t>(hd)};
  }
  cpu::AttentionBatch batch() const { return {positions, token_seq, tables, mb}; }
  int64_t T() const { return static_cast<int64_t>(positions.size()); }
};

Scenario make_scenario(int64_t Hq, int64_t Hkv, int64_t hd, uint32_t seed, float q_scale = 1.0f) {
  std::mt19937 gen(seed);
  Scenario sc;
  sc.Hq = Hq;
  sc.Hkv = Hkv;
  sc.hd = hd;
  // prefill from scratch, decode tokens (one at a block boundary), chunked prefill continuing a
  // cached prefix across blocks, a first token.
  sc.seqs = {{0, 37}, {52, 1}, {15, 18}, {0, 1}, {16, 1}, {31, 2}, {5, 11}};
  const auto S = static_cast<int32_t>(sc.seqs.size());
  int needed = 0, longest = 0;
  for (const auto& s : sc.seqs) {
    const int len = s.cached + s.fresh;
    needed += (len + sc.bs - 1) / sc.bs;
    longest = std::max(longest, len);
  }
  sc.mb = (longest + sc.bs - 1) / sc.bs + 1;  // one spare entry per row stays -1
  sc.num_blocks = needed + 5;
  std::vector<int32_t> pool(sc.num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), gen);
  sc.tables.assign(static_cast<size_t>(S) * sc.mb, -1);
  size_t next = 0;
  for (int32_t s = 0; s < S; ++s) {
    const int len = sc.seqs[s].cached + sc.seqs[s].fresh;
    for (int b = 0; b < (len + sc.bs - 1) / sc.bs; ++b) sc.tables[s * sc.mb + b] = pool[next++];
  }
  const size_t slot = static_cast<size_t>(Hkv * hd);
  sc.k_cache.assign(static_cast<size_t>(sc.num_blocks) * sc.bs * slot, kNaN);
  sc.v_cache = sc.k_cache;
  for (const auto& s : sc.seqs) {
    const size_t len = static_cast<size_t>(s.cached + s.fresh);
    sc.k_all.push_back(normal(gen, len * slot));
    sc.v_all.push_back(normal(gen, len * slot));
  }
  // Write the cached prefixes in one earlier batch.
  std::vector<int32_t> pos0, seq0;
  std::vector<float> k0, v0;
  for (int32_t s = 0; s < S; ++s) {
    for (int p = 0; p < sc.seqs[s].cached; ++p) {
      pos0.push_back(p);
      seq0.push_back(s);
      k0.insert(k0.end(), sc.k_all[s].begin() + p * slot, sc.k_all[s].begin() + (p + 1) * slot);
      v0.insert(v0.end(), sc.v_all[s].begin() + p * slot, sc.v_all[s].begin() + (p + 1) * slot);
    }
  }
  cpu::kv_write(sc.kv(), k0.data(), v0.data(), {pos0, seq0, sc.tables, sc.mb});
  // The new batch: sequences in a shuffled order, each one's tokens contiguous.
  std::vector<int32_t> order(S);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), gen);
  for (int32_t s : order) {
    for (int p = sc.seqs[s].cached; p < sc.seqs[s].cached + sc.seqs[s].fresh; ++p) {
      sc.positions.push_back(p);
      sc.token_seq.push_back(s);
      sc.k_new.insert(sc.k_new.end(), sc.k_all[s].begin() + p * slot,
                      sc.k_all[s].begin() + (p + 1) * slot);
      sc.v_new.insert(sc.v_new.end(), sc.v_all[s].begin() + p * slot,
                      sc.v_all[s].begin() + (p + 1) * slot);
    }
  }
  sc.q = normal(gen, static_cast<size_t>(sc.T() * Hq * hd), q_scale);
  return sc;
}

// Dense causal attention in float64 over each sequence's full k/v history.
std::vector<double> dense_attention(const Scenario& sc, double scale) {
  const int64_t group = sc.Hq / sc.Hkv;
  std::vector<double> out(static_cast<size_t>(sc.T() * sc.Hq * sc.hd));
  for (int64_t t = 0; t < sc.T(); ++t) {
    const auto& K = sc.k_all[sc.token_seq[t]];
    const auto& Vv = sc.v_all[sc.token_seq[t]];
    const int64_t len = sc.positions[t] + 1;
    for (int64_t h = 0; h < sc.Hq; ++h) {
      const float* qv = sc.q.data() + (t * sc.Hq + h) * sc.hd;
      const int64_t kvh = h / group;
      std::vector<double> s(len);
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < len; ++j) {
        double dot = 0;
        for (int64_t d = 0; d < sc.hd; ++d) {
          dot += double{qv[d]} * K[(j * sc.Hkv + kvh) * sc.hd + d];
        }
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (auto& e : s) sum += (e = std::exp(e - mx));
      for (int64_t d = 0; d < sc.hd; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < len; ++j) acc += s[j] * Vv[(j * sc.Hkv + kvh) * sc.hd + d];
        out[(t * sc.Hq + h) * sc.hd + d] = acc / sum;
      }
    }
  }
  return out;
}

// max over (token, head) rows of max|got - ref| / max|ref|
double attention_error(const Scenario& sc, const std::vector<float>& got,
                       const std::vector<double>& ref) {
  double worst = 0;
  for (int64_t r = 0; r < sc.T() * sc.Hq; ++r) {
    double diff = 0, mag = 0;
    for (int64_t d = 0; d < sc.hd; ++d) {
      const size_t i = static_cast<size_t>(r * sc.hd + d);
      diff = std::max(diff, std::abs(got[i] - ref[i]));
      if (!std::isfinite(got[i])) diff = std::numeric_limits<double>::infinity();  // std::max skips a NaN
      mag = std::max(mag, std::abs(ref[i]));
    }
    worst = std::max(worst, diff / mag);
  }
  return worst;
}

TEST(CpuOps, KvWritePlacesSlotsByBlockTable) {
  Scenario sc = make_scenario(2, 2, 8, 7);
  cpu::kv_write(sc.kv(), sc.k_new.data(), sc.v_new.data(), sc.batch());
  const int64_t slot = sc.Hkv * sc.hd;
  std::vector<bool> touched(static_cast<size_t>(sc.num_blocks) * sc.bs, false);
  for (size_t s = 0; s < sc.seqs.size(); ++s) {
    const int len = sc.seqs[s].cached + sc.seqs[s].fresh;
    for (int p = 0; p < len; ++p) {
      const int32_t block = sc.tables[s * sc.mb + p / sc.bs];
      const int64_t row = int64_t{block} * sc.bs + p % sc.bs;
      touched[row] = true;
      for (int64_t i = 0; i < slot; ++i) {
        ASSERT_EQ(sc.k_cache[row * slot + i], sc.k_all[s][p * slot + i]) << s << " " << p;
        ASSERT_EQ(sc.v_cache[row * slot + i], sc.v_all[s][p * slot + i]) << s << " " << p;
      }
    }
  }
  for (size_t row = 0; row < touched.size(); ++row) {
    if (touched[row]) continue;
    for (int64_t i = 0; i < slot; ++i) {
      ASSERT_TRUE(std::isnan(sc.k_cache[row * slot + i])) << "slot " << row << " written";
      ASSERT_TRUE(std::isnan(sc.v_cache[row * slot + i])) << "slot " << row << " written";
    }
  }
}

TEST(CpuOps, AttentionHandComputed) {
  // One head, hd 2, scale 1: k0 = 0, k1 = (ln 3, 0), q = (1, 0) -> scores (0, ln 3), weights
  // (1/4, 3/4); v0 = (1, 0), v1 = (0, 1). Token 0 sees only v0.
  std::vector<float> k_cache(4 * 2, kNaN), v_cache(4 * 2, kNaN);
  const std::vector<int32_t> table = {1, -1};
  const std::vector<int32_t> pos = {0, 1}, seq = {0, 0};
  const cpu::PagedKv kv{k_cache.data(), v_cache.data(), 2, 2, 1, 2};
  const cpu::AttentionBatch batch{pos, seq, table, 2};
  const std::vector<float> k = {0, 0, static_cast<float>(std::log(3.0)), 0}, v = {1, 0, 0, 1};
  const std::vector<float> q = {1, 0, 1, 0};
  cpu::kv_write(kv, k.data(), v.data(), batch);
  std::vector<float> out(4, kNaN);
  cpu::attention(q.data(), 1, kv, batch, 1.0f, out.data());
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_NEAR(out[2], 0.25f, 1e-7);
  EXPECT_NEAR(out[3], 0.75f, 1e-7);
}

TEST(CpuOps, AttentionMatchesFloat64DenseReference) {
  double worst = 0;
  uint32_t seed = 100;
  for (int64_t ratio : {1, 2, 4, 8}) {
    for (int64_t hd : {8, 64, 128}) {
      const int64_t Hkv = 2, Hq = Hkv * ratio;
      Scenario sc = make_scenario(Hq, Hkv, hd, seed++);
      cpu::kv_write(sc.kv(), sc.k_new.data(), sc.v_new.data(), sc.batch());
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      std::vector<float> out(sc.q.size(), kNaN);
      cpu::attention(sc.q.data(), Hq, sc.kv(), sc.batch(), scale, out.data());
      const double err = attention_error(sc, out, dense_attention(sc, scale));
      EXPECT_LT(err, 1e-5) << "ratio " << ratio << " hd " << hd;
      worst = std::max(worst, err);
    }
  }
  report("attention max rowwise relative error", worst);
}

// Scores around +-150: exp would overflow without subtracting the max.
TEST(CpuOps, AttentionLargeScoresStable) {
  Scenario sc = make_scenario(8, 2, 64, 9, /*q_scale=*/40.0f);
  cpu::kv_write(sc.kv(), sc.k_new.data(), sc.v_new.data(), sc.batch());
  const float scale = 0.125f;
  std::vector<float> out(sc.q.size(), kNaN);
  cpu::attention(sc.q.data(), sc.Hq, sc.kv(), sc.batch(), scale, out.data());
  const double err = attention_error(sc, out, dense_attention(sc, scale));
  EXPECT_LT(err, 2e-4);
  report("attention (scores ~ +-150) max rowwise relative error", err);
}

TEST(CpuOps, ResultsIndependentOfThreadCount) {
  Scenario sc = make_scenario(8, 2, 64, 11);
  cpu::kv_write(sc.kv(), sc.k_new.data(), sc.v_new.data(), sc.batch());
  std::mt19937 gen(12);
  const auto x = normal(gen, 5 * 300), w = normal(gen, 77 * 300);
  std::vector<float> att1(sc.q.size()), att3(sc.q.size()), lin1(5 * 77), lin3(5 * 77);
  const TensorView wv =
      TensorView::contiguous(const_cast<float*>(w.data()), DType::kF32, {77, 300});
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  cpu::attention(sc.q.data(), sc.Hq, sc.kv(), sc.batch(), 0.125f, att1.data());
  cpu::linear(x.data(), 5, wv, TensorView{}, lin1.data());
  omp_set_num_threads(3);
  cpu::attention(sc.q.data(), sc.Hq, sc.kv(), sc.batch(), 0.125f, att3.data());
  cpu::linear(x.data(), 5, wv, TensorView{}, lin3.data());
  omp_set_num_threads(saved);
  EXPECT_EQ(att1, att3);
  EXPECT_EQ(lin1, lin3);
}

TEST(CpuOps, KvWriteAndAttentionRejectOutOfRange) {
  std::vector<float> k_cache(4 * 2 * 1 * 2, kNaN), v_cache = k_cache;
  const cpu::PagedKv kv{k_cache.data(), v_cache.data(), 4, 2, 1, 2};  // 4 blocks of 2 slots
  const std::vector<float> kvals(2 * 2, 1.0f), q(2 * 2, 1.0f);
  std::vector<float> out(4);
  const std::vector<int32_t> table = {3, -1, 7, 0};  // seq 0: block 3 then unmapped; seq 1: 7, 0
  auto write = [&](std::vector<int32_t> pos, std::vector<int32_t> seq) {
    cpu::kv_write(kv, kvals.data(), kvals.data(), {pos, seq, table, 2});
  };
  auto attend = [&](std::vector<int32_t> pos, std::vector<int32_t> seq) {
    cpu::attention(q.data(), 1, kv, {pos, seq, table, 2}, 1.0f, out.data());
  };
  expect_error(ErrorCode::kOutOfRange, "position 4", [&] { write({4}, {0}); });
  expect_error(ErrorCode::kOutOfRange, "position -1", [&] { write({-1}, {0}); });
  expect_error(ErrorCode::kOutOfRange, "block -1", [&] { write({2}, {0}); });
  expect_error(ErrorCode::kOutOfRange, "block 7", [&] { write({0}, {1}); });
  expect_error(ErrorCode::kOutOfRange, "sequence 2", [&] { write({0}, {2}); });
  // A failed batch writes nothing, even its valid tokens.
  expect_error(ErrorCode::kOutOfRange, "position 9", [&] { write({0, 9}, {0, 0}); });
  for (float f : k_cache) ASSERT_TRUE(std::isnan(f));
  // Attention checks every block its causal window reads: seq 1 at position 2 reads block 7.
  expect_error(ErrorCode::kOutOfRange, "block 7", [&] { attend({2}, {1}); });
  expect_error(ErrorCode::kOutOfRange, "position 4", [&] { attend({4}, {0}); });
  expect_error(ErrorCode::kOutOfRange, "block -1", [&] { attend({2}, {0}); });
  expect_error(ErrorCode::kInvalidArgument, "positions", [&] {
    cpu::kv_write(kv, kvals.data(), kvals.data(),
                  {std::vector<int32_t>{0, 1}, std::vector<int32_t>{0}, table, 2});
  });
  expect_error(ErrorCode::kInvalidArgument, "query heads", [&] {
    const cpu::PagedKv kv2{k_cache.data(), v_cache.data(), 2, 2, 2, 2};
    cpu::attention(q.data(), 3, kv2, {std::vector<int32_t>{0}, std::vector<int32_t>{0}, table, 2},
                   1.0f, out.data());
  });
}

}  // namespace
}  // namespace fdpp

// The QKV projection's decode epilogue (rope_store.cuh: RoPE and the paged-cache store in the
// GEMV or the streamed flat GEMM) against the path it replaces: the same kernel writing qkv, then
// qkv_store. Fresh random inputs, shuffled cache blocks, random positions; q, both caches and the
// cache slots neither path may touch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/gemv.cuh"
#include "gpu/linear_test_util.h"

namespace fdpp {
namespace {

struct Shape {
  int hq, hkv, hd, k;
};

// got and want are written at the same places (NaN where neither wrote: both start poisoned),
// and agree where written to T's tolerance.
void expect_same_writes(const std::vector<float>& got, const std::vector<float>& want, double tol, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  std::vector<float> got_written;
  std::vector<double> want_written;
  size_t mismatched_places = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) != std::isnan(want[i])) ++mismatched_places;
    if (!std::isnan(want[i])) {
      got_written.push_back(got[i]);
      want_written.push_back(want[i]);
    }
  }
  EXPECT_EQ(mismatched_places, 0u) << what << ": written at other places than the unfused path";
  EXPECT_FALSE(want_written.empty()) << what;
  EXPECT_LT(test::scaled_max_error(got_written, want_written), tol) << what;
}

// One kernel with Params P (GemvParams or FlatGemmParams); `adjust` sets its own fields (the
// flat GEMM's splits and scale-only norm) on both runs.
template <typename T, typename P, typename Launch, typename Adjust>
void check_rope_store(int M, const Shape& s, bool norm, bool bias, std::mt19937& rng, Launch launch, Adjust adjust) {
  SCOPED_TRACE("M=" + std::to_string(M) + " Hq=" + std::to_string(s.hq) + " Hkv=" + std::to_string(s.hkv) +
               " hd=" + std::to_string(s.hd) + " K=" + std::to_string(s.k) + (norm ? " norm" : "") +
               (bias ? " bias" : ""));
  const int64_t N = int64_t{s.hq + 2 * s.hkv} * s.hd, K = s.k;
  constexpr int kBlockSize = 16, kMaxBlocks = 4;  // positions 0..63
  const int num_blocks = M * kMaxBlocks;
  const size_t cache_elems = static_cast<size_t>(num_blocks) * kBlockSize * s.hkv * s.hd;
  test::NormedLinearOperands<T> ops(M, N, K, 1.0f, 0.3f, rng);  // x, w, bias, norm weight; out is qkv
  test::DeviceArray<T> q_fused(static_cast<size_t>(M) * s.hq * s.hd), q_ref(q_fused.host.size()),
      k_fused(cache_elems), v_fused(cache_elems), k_ref(cache_elems), v_ref(cache_elems);
  for (auto* a : {&q_fused, &q_ref, &k_fused, &v_fused, &k_ref, &v_ref}) a->poison();

  std::vector<float> inv_freq(static_cast<size_t>(s.hd / 2));
  for (size_t i = 0; i < inv_freq.size(); ++i)
    inv_freq[i] = std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(s.hd));
  test::DeviceFloats d_inv_freq(inv_freq.size());
  ASSERT_EQ(cudaMemcpy(d_inv_freq.dev, inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<int32_t> positions(static_cast<size_t>(M)), token_seq(static_cast<size_t>(M)),
      tables(static_cast<size_t>(M * kMaxBlocks));
  std::iota(tables.begin(), tables.end(), 0);
  std::shuffle(tables.begin(), tables.end(), rng);
  for (int m = 0; m < M; ++m) {
    positions[static_cast<size_t>(m)] = static_cast<int32_t>(rng() % (kMaxBlocks * kBlockSize));
    token_seq[static_cast<size_t>(m)] = m;
  }
  test::DeviceInts d_pos(positions), d_seq(token_seq), d_tables(tables);

  P plain = ops.template params<P>(bias, norm, false);
  adjust(plain);
  P fused = plain;
  fused.out = nullptr;
  fused.rope = {q_fused.dev, k_fused.dev, v_fused.dev, d_inv_freq.dev, d_pos.dev, d_seq.dev, d_tables.dev,
                kMaxBlocks, kBlockSize, s.hq, s.hkv, s.hd};
  Status st = launch(fused);
  ASSERT_TRUE(st.is_ok()) << st.message();
  st = launch(plain);
  ASSERT_TRUE(st.is_ok()) << st.message();
  cuda::QkvStoreParams<T> store;
  store.kv = {k_ref.dev, v_ref.dev, num_blocks, kBlockSize, s.hkv, s.hd};
  store.slots = {d_pos.dev, d_seq.dev, d_tables.dev, kMaxBlocks, M};
  store.qkv = ops.out.dev;
  store.inv_freq = d_inv_freq.dev;
  store.q_out = q_ref.dev;
  store.num_q_heads = s.hq;
  st = cuda::launch_qkv_store(store, nullptr);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  // The unfused path rounds the product to T before rotating; the epilogue rotates the fp32 sum.
  const double tol = test::linear_tol<T>();
  const std::vector<float> q_got = q_fused.download();
  ASSERT_EQ(std::count_if(q_got.begin(), q_got.end(), [](float v) { return std::isnan(v); }), 0) << "q left poisoned";
  expect_same_writes(q_got, q_ref.download(), tol, "q");
  expect_same_writes(k_fused.download(), k_ref.download(), tol, "k cache");
  expect_same_writes(v_fused.download(), v_ref.download(), tol, "v cache");
}

template <typename T>
Status gemv(const cuda::GemvParams<T>& p) {
  EXPECT_TRUE(p.rope.q_out == nullptr || cuda::gemv_can_rope_store(p.M, p.K, p.x, p.w));
  return cuda::launch_gemv(p, nullptr);
}
template <typename T>
Status flat(const cuda::FlatGemmParams<T>& p) {
  return cuda::launch_flat_gemm(p, nullptr);
}

TEST(GpuQkvEpilogue, GemvMatchesTheGemvThenQkvStore) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(31);
  auto keep = [](auto&) {};
  int i = 0;
  // Llama-3-8B's heads, Llama-2-7B's (MHA) at a smaller K, stories260K's head_dim 8, head_dim 64.
  for (const Shape& s : {Shape{32, 8, 128, 4096}, Shape{32, 32, 128, 512}, Shape{8, 4, 8, 64}, Shape{4, 2, 64, 264}})
    for (int M = 1; M <= static_cast<int>(cuda::kGemvNormMaxM); ++M) {
      ++i;
      check_rope_store<__half, cuda::GemvParams<__half>>(M, s, i % 2 == 0, i % 3 == 0, rng, gemv<__half>, keep);
      check_rope_store<__nv_bfloat16, cuda::GemvParams<__nv_bfloat16>>(M, s, i % 2 == 1, i % 3 == 1, rng,
                                                                        gemv<__nv_bfloat16>, keep);
    }
}

// The streamed flat GEMM: one split and forced splits (the pair meets on rank 0), the weighted and
// the scale-only norm, M up to kFlatGemmRopeMaxM; head_dim 64 and 128 (the tile's 8 pairs need
// hd % 16 == 0).
TEST(GpuQkvEpilogue, FlatGemmMatchesTheFlatGemmThenQkvStore) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(32);
  int i = 0;
  for (const Shape& s : {Shape{32, 8, 128, 4096}, Shape{32, 32, 128, 512}, Shape{4, 2, 64, 264}})
    for (int M : {1, 2, 3, 5, 8})
      for (int splits : {0, 2}) {
        ++i;
        const bool scale_only = i % 4 == 0;
        auto adjust = [&](auto& p) {
          p.splits = splits;
          p.norm_scale_only = scale_only && p.norm_weight != nullptr;
        };
        check_rope_store<__half, cuda::FlatGemmParams<__half>>(M, s, i % 2 == 0, i % 3 == 0, rng, flat<__half>, adjust);
        check_rope_store<__nv_bfloat16, cuda::FlatGemmParams<__nv_bfloat16>>(M, s, i % 2 == 1, i % 3 == 1, rng,
                                                                              flat<__nv_bfloat16>, adjust);
      }
}

TEST(GpuQkvEpilogue, RejectsWhatItCannotServe) {
  FDPP_REQUIRE_GPU();
  const Shape s{4, 2, 8, 64};
  const int64_t N = int64_t{s.hq + 2 * s.hkv} * s.hd;
  test::DeviceArray<__half> x(8 * 64), w(static_cast<size_t>(N * 64)), q(8 * 4 * 8), kc(4 * 16 * 2 * 8),
      vc(kc.host.size()), out(static_cast<size_t>(8 * N));
  test::DeviceFloats inv_freq(4);
  test::DeviceInts ints(std::vector<int32_t>(8, 0));
  auto params = [&](int64_t M) {
    cuda::GemvParams<__half> p;
    p.x = x.dev;
    p.w = w.dev;
    p.M = M;
    p.N = N;
    p.K = 64;
    p.rope = {q.dev, kc.dev, vc.dev, inv_freq.dev, ints.dev, ints.dev, ints.dev, 1, 16, s.hq, s.hkv, s.hd};
    return p;
  };
  auto code = [](const cuda::GemvParams<__half>& p) { return cuda::launch_gemv(p, nullptr).code(); };
  EXPECT_EQ(code(params(1)), ErrorCode::kOk);
  EXPECT_EQ(code(params(cuda::kGemvNormMaxM + 1)), ErrorCode::kUnsupported);  // two rows per block: M <= 4
  auto wrong_n = params(1);
  wrong_n.N = N - 2;
  EXPECT_EQ(code(wrong_n), ErrorCode::kUnsupported);
  auto odd_hd = params(1);
  odd_hd.rope.head_dim = 7;
  EXPECT_EQ(code(odd_hd), ErrorCode::kUnsupported);
  auto with_out = params(1);
  with_out.out = out.dev;
  EXPECT_EQ(code(with_out), ErrorCode::kUnsupported);
  auto gated = params(1);
  gated.gated_silu = true;
  EXPECT_EQ(code(gated), ErrorCode::kUnsupported);
  auto no_cache = params(1);
  no_cache.rope.v_cache = nullptr;
  EXPECT_EQ(code(no_cache), ErrorCode::kInvalidArgument);
  auto odd_k = params(1);
  odd_k.K = 60;
  EXPECT_EQ(code(odd_k), ErrorCode::kUnsupported);  // the epilogue is a fast-path variant

  // The flat GEMM: one n-tile (M <= kFlatGemmRopeMaxM) and 8 pairs of one head per tile (hd % 16).
  auto flat_params = [&](int64_t M, int hd) {
    cuda::FlatGemmParams<__half> p;
    p.x = x.dev;
    p.w = w.dev;
    p.M = M;
    p.N = int64_t{s.hq + 2 * s.hkv} * hd;
    p.K = 64;
    p.rope = {q.dev, kc.dev, vc.dev, inv_freq.dev, ints.dev, ints.dev, ints.dev, 1, 16, s.hq, s.hkv, hd};
    return p;
  };
  auto flat_code = [](const cuda::FlatGemmParams<__half>& p) { return cuda::launch_flat_gemm(p, nullptr).code(); };
  EXPECT_EQ(flat_code(flat_params(cuda::kFlatGemmRopeMaxM + 1, 16)), ErrorCode::kUnsupported);
  EXPECT_EQ(flat_code(flat_params(1, 8)), ErrorCode::kUnsupported);
  auto flat_gated = flat_params(1, 16);
  flat_gated.gated_silu = true;
  EXPECT_EQ(flat_code(flat_gated), ErrorCode::kUnsupported);
  auto flat_no_cache = flat_params(1, 16);
  flat_no_cache.rope.k_cache = nullptr;
  EXPECT_EQ(flat_code(flat_no_cache), ErrorCode::kInvalidArgument);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace fdpp

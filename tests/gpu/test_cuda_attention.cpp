// GPU attention (split-KV asynchronized softmax + merge + online-softmax fallback) against a
// float64 reference and the CPU backend, on fresh random inputs through a shuffled paged cache.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>
#include <string>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/attention/attention_traits.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/tensor_map.h"
#include "fdpp/status.h"
#include "gpu/gpu_test_util.h"

namespace fdpp {
namespace {

struct Case {
  std::vector<int32_t> kv_lens;  // one sequence per entry; each contributes `queries` tokens
  int queries = 1;               // query tokens per sequence (the last positions): 1 = decode
  int hq = 32, hkv = 8, hd = 128;
  cuda::SoftmaxRange range{};
  float k_scale = 1.0f;          // spread of K: larger means larger scores
  int planted_rows = 0;          // K rows multiplied by 400 to push scores out of range
  bool prefill_kernel = false;   // the prefill launch (tiles of kPrefillTileRows tokens) instead of decode
  bool reversed_rows = false;    // decode launch over an explicit row list, in reverse token order
  bool row_list = false;         // prefill launch over an explicit (identity) row list
  int check_stride = 1;          // > 1: compare only every check_stride-th token and the last (long prompts)
  int block_size = 16;           // positions per paged-cache block
  int mma_stages = 0;            // > 0: the tensor-core kernel's ring depth, forced over the plan's
  int mma_bulk = -1;             // 0 / 1: the tensor-core kernel's copies (cp.async / bulk), forced over the plan's
  int mma_tensor_maps = -1;      // 0 / 1: with bulk copies, row copies / tensor copies of whole tiles, forced
  bool nan_past_end = false;     // K and V of the slots past each sequence's end in its last block are NaN
};

// The SM count plan_attention sizes its grids for; 0 where the device cannot be asked.
int device_sm_count() {
  int sms = 0;
  return cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess ? sms : 0;
}

struct Result {
  double err_vs_f64 = 0, err_vs_cpu = 0;
  uint64_t fallback_rows = 0;
  // (token, head) rows of the reference with a score outside [lo, hi], and those with a score
  // within 1e-3 of lo or hi (float rounding may decide those either way). Checked tokens only.
  uint64_t out_of_range_rows = 0, near_bound_rows = 0;
};

template <typename T>
Result run_case(const Case& c, uint32_t seed) {
  std::mt19937 rng(seed);
  const int block = c.block_size;
  const int S = static_cast<int>(c.kv_lens.size());
  int max_blocks = 0, total_blocks = 0;
  for (int len : c.kv_lens) {
    max_blocks = std::max(max_blocks, (len + block - 1) / block);
    total_blocks += (len + block - 1) / block;
  }
  // Block tables: a random permutation of all blocks, -1 past each sequence's end.
  std::vector<int32_t> perm(static_cast<size_t>(total_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int32_t> tables(static_cast<size_t>(S * max_blocks), -1);
  size_t next = 0;
  for (int s = 0; s < S; ++s)
    for (int b = 0; b < (c.kv_lens[s] + block - 1) / block; ++b) tables[static_cast<size_t>(s * max_blocks + b)] = perm[next++];

  std::vector<int32_t> positions, token_seq;
  for (int s = 0; s < S; ++s)
    for (int i = std::max(0, c.kv_lens[s] - c.queries); i < c.kv_lens[s]; ++i) {
      positions.push_back(i);
      token_seq.push_back(s);
    }
  const int n_tokens = static_cast<int>(positions.size());
  const size_t row = static_cast<size_t>(c.hkv * c.hd);
  test::DeviceArray<T> q(static_cast<size_t>(n_tokens * c.hq * c.hd)), out(q.size());
  test::DeviceArray<T> k(static_cast<size_t>(total_blocks * block) * row), v(k.size());
  q.fill_normal(rng, 1.0f);
  k.fill_normal(rng, c.k_scale);
  v.fill_normal(rng, 1.0f);
  for (int i = 0; i < c.planted_rows; ++i) {  // a few huge keys: their scores leave any sane range
    const size_t slot = rng() % (static_cast<size_t>(total_blocks) * block);
    for (size_t j = 0; j < row; ++j) k.host[slot * row + j] = test::from_device_type(test::to_device_type<T>(k.host[slot * row + j] * 400.0f));
  }
  if (c.nan_past_end)  // stale slots a tile may copy: a kernel must ignore their K and zero their V
    for (int s = 0; s < S; ++s) {
      const int len = c.kv_lens[static_cast<size_t>(s)];
      for (int pos = len; pos % block != 0; ++pos) {
        const size_t slot = static_cast<size_t>(tables[static_cast<size_t>(s * max_blocks + pos / block)]) * block +
                            static_cast<size_t>(pos % block);
        std::fill_n(k.host.begin() + static_cast<long>(slot * row), row, NAN);
        std::fill_n(v.host.begin() + static_cast<long>(slot * row), row, NAN);
      }
    }
  k.upload();
  if (c.nan_past_end) v.upload();
  out.poison();
  test::DeviceInts d_pos(positions), d_seq(token_seq), d_tables(tables);

  cuda::AttentionParams<T> p;
  p.q = q.dev;
  p.out = out.dev;
  p.kv = {k.dev, v.dev, total_blocks, block, c.hkv, c.hd};
  p.slots = {d_pos.dev, d_seq.dev, d_tables.dev, max_blocks, n_tokens};
  p.num_q_heads = c.hq;
  p.scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
  p.range = c.range;
  const int max_len = *std::max_element(c.kv_lens.begin(), c.kv_lens.end());
  const int sms = device_sm_count();
  p.plan = c.prefill_kernel ? cuda::plan_prefill_attention(n_tokens, c.hq, c.hkv, c.hd)
                            : cuda::plan_attention(n_tokens, c.hq, c.hkv, c.hd, max_len, sms);
  if (c.mma_stages > 0) p.plan.mma_stages = c.mma_stages;
  if (c.mma_bulk >= 0) p.plan.mma_bulk = c.mma_bulk == 1;
  if (c.mma_tensor_maps >= 0) p.plan.mma_tensor_maps = c.mma_tensor_maps == 1;
  // Prefill tiles: each sequence's tokens are consecutive, kPrefillTileRows at most per tile.
  std::vector<int32_t> tiles;
  for (int i = 0; i < n_tokens;) {
    int j = i;
    while (j < n_tokens && token_seq[static_cast<size_t>(j)] == token_seq[static_cast<size_t>(i)] &&
           j - i < cuda::kPrefillTileRows)
      ++j;
    tiles.push_back(i);
    tiles.push_back(j - i);
    i = j;
  }
  std::vector<int32_t> rows(static_cast<size_t>(n_tokens));
  for (int i = 0; i < n_tokens; ++i) rows[static_cast<size_t>(i)] = n_tokens - 1 - i;
  test::DeviceInts d_tiles(tiles), d_rows(rows);
  if (c.prefill_kernel) {
    p.tiles = d_tiles.dev;
    p.num_tiles = static_cast<int32_t>(tiles.size() / 2);
  }
  if (c.reversed_rows) {
    p.rows = d_rows.dev;
    p.num_rows = n_tokens;
  }
  std::vector<int32_t> identity(static_cast<size_t>(n_tokens));
  std::iota(identity.begin(), identity.end(), 0);
  test::DeviceInts d_identity(identity);
  if (c.row_list) {
    p.rows = d_identity.dev;
    p.num_rows = n_tokens;
  }
  void* ws = nullptr;
  unsigned long long* counter = nullptr;
  EXPECT_EQ(cudaMalloc(&ws, p.plan.workspace_bytes), cudaSuccess);
  EXPECT_EQ(cudaMalloc(&counter, sizeof(*counter)), cudaSuccess);
  cudaMemset(counter, 0, sizeof(*counter));
  p.workspace = ws;
  p.fallback_rows = counter;
  const Status st = c.prefill_kernel ? cuda::launch_prefill_attention(p, nullptr) : cuda::launch_attention(p, nullptr);
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> got = out.download();
  Result r;
  cudaMemcpy(&r.fallback_rows, counter, sizeof(*counter), cudaMemcpyDeviceToHost);
  cudaFree(ws);
  cudaFree(counter);

  // float64 reference on the same (rounded) values. The (token, head) rows are independent and
  // each writes its own slice of want: they run in parallel (GPU machine time is scarce).
  std::vector<double> want(got.size());
  const int group = c.hq / c.hkv;
  auto checked = [&](int t) { return t % c.check_stride == 0 || t == n_tokens - 1; };
  uint64_t out_of_range_rows = 0, near_bound_rows = 0;
  const int64_t token_heads = int64_t{n_tokens} * c.hq;
#pragma omp parallel for schedule(dynamic) reduction(+ : out_of_range_rows, near_bound_rows)
  for (int64_t th = 0; th < token_heads; ++th) {
    const int t = static_cast<int>(th / c.hq), h = static_cast<int>(th % c.hq);
    if (!checked(t)) continue;
    const int s = token_seq[static_cast<size_t>(t)], len = positions[static_cast<size_t>(t)] + 1;
    const float* qh = &q.host[(static_cast<size_t>(t) * c.hq + h) * c.hd];
    std::vector<double> scores(static_cast<size_t>(len));
    double m = -1e300;
    bool outside = false, near = false;
    for (int pos = 0; pos < len; ++pos) {
      const size_t slot = static_cast<size_t>(tables[static_cast<size_t>(s * max_blocks + pos / block)]) * block + pos % block;
      const float* kh = &k.host[slot * row + static_cast<size_t>(h / group) * c.hd];
      double dot = 0;
      for (int d = 0; d < c.hd; ++d) dot += double(qh[d]) * kh[d];
      const double sc = dot / std::sqrt(double(c.hd));
      scores[static_cast<size_t>(pos)] = sc;
      m = std::max(m, sc);
      outside |= sc < c.range.lo || sc > c.range.hi;
      near |= std::abs(sc - c.range.lo) < 1e-3 || std::abs(sc - c.range.hi) < 1e-3;
    }
    out_of_range_rows += outside ? 1 : 0;
    near_bound_rows += near ? 1 : 0;
    double denom = 0;
    std::vector<double> o(static_cast<size_t>(c.hd), 0.0);
    for (int pos = 0; pos < len; ++pos) {
      const double e = std::exp(scores[static_cast<size_t>(pos)] - m);
      denom += e;
      const size_t slot = static_cast<size_t>(tables[static_cast<size_t>(s * max_blocks + pos / block)]) * block + pos % block;
      const float* vh = &v.host[slot * row + static_cast<size_t>(h / group) * c.hd];
      for (int d = 0; d < c.hd; ++d) o[static_cast<size_t>(d)] += e * vh[d];
    }
    for (int d = 0; d < c.hd; ++d) want[(static_cast<size_t>(t) * c.hq + h) * c.hd + d] = o[static_cast<size_t>(d)] / denom;
  }
  r.out_of_range_rows = out_of_range_rows;
  r.near_bound_rows = near_bound_rows;
  if (c.check_stride > 1) {  // the sampled tokens only; the CPU backend would redo every token
    std::vector<float> got_s;
    std::vector<double> want_s;
    const size_t row_elems = static_cast<size_t>(c.hq * c.hd);
    for (int t = 0; t < n_tokens; ++t)
      if (checked(t)) {
        got_s.insert(got_s.end(), got.begin() + static_cast<long>(t * row_elems), got.begin() + static_cast<long>((t + 1) * row_elems));
        want_s.insert(want_s.end(), want.begin() + static_cast<long>(t * row_elems), want.begin() + static_cast<long>((t + 1) * row_elems));
      }
    r.err_vs_f64 = test::scaled_max_error(got_s, want_s);
    return r;
  }
  r.err_vs_f64 = test::scaled_max_error(got, want);

  // The CPU backend on the same inputs (fp32).
  std::vector<float> cpu_out(got.size());
  cpu::PagedKv kv{k.host.data(), v.host.data(), total_blocks, block, c.hkv, c.hd};
  cpu::AttentionBatch batch{positions, token_seq, tables, max_blocks};
  cpu::attention(q.host.data(), c.hq, kv, batch, p.scale, cpu_out.data());
  std::vector<double> cpu_d(cpu_out.begin(), cpu_out.end());
  r.err_vs_cpu = test::scaled_max_error(got, cpu_d);
  return r;
}

template <typename T>
void expect_close(const Case& c, uint32_t seed, const char* what) {
  const Result r = run_case<T>(c, seed);
  const double tol = test::dtype_of<T>() == DType::kF16 ? 4e-3 : 2.5e-2;
  EXPECT_LT(r.err_vs_f64, tol) << what;
  EXPECT_LT(r.err_vs_cpu, tol) << what;
}

TEST(GpuAttention, DecodeMatchesFloat64AcrossBatchesAndContexts) {
  FDPP_REQUIRE_GPU();
  const std::vector<std::vector<int32_t>> batches = {
      {1}, {7}, {1000}, {4097}, {32768},                // batch 1, lengths off the tile grid
      {1, 17, 300, 1024, 2049, 5, 64, 999},             // mixed lengths
      // Batch 12 up to 4100 positions: with 32 KV heads, 384 pairs from 4096 positions take the
      // tensor-core kernel on an H100 (small_group_on_tensor_cores, mma_grid.h).
      {4100, 17, 300, 4096, 2049, 5, 64, 999, 1, 4097, 130, 3001},
      // Batch 20 up to 6200 positions: 640 pairs, more than two waves, take the tensor-core kernel
      // with one split per 2048 positions (4 of 1600), the last one partial (wide_small_group_grid).
      {6200, 4096, 17, 2048, 2049, 6143, 5, 64, 999, 1, 4097, 130, 3001, 6200, 700, 5000, 33, 4095, 1500, 6199},
  };
  uint32_t seed = 1;
  for (const auto& lens : batches) {
    for (int hkv : {32, 8}) {
      Case c;
      c.kv_lens = lens;
      c.hkv = hkv;
      expect_close<__half>(c, seed++, "fp16");
      expect_close<__nv_bfloat16>(c, seed++, "bf16");
    }
  }
  Case wide;  // batch 64 at 1K
  wide.kv_lens.assign(64, 1024);
  for (size_t i = 0; i < wide.kv_lens.size(); ++i) wide.kv_lens[i] -= static_cast<int32_t>(i * 13);
  expect_close<__half>(wide, seed++, "batch 64");
}

TEST(GpuAttention, GqaRatiosAndHeadDims) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 100;
  for (int hkv : {32, 16, 8, 4}) {       // ratios 1, 2, 4, 8
    for (int hd : {64, 128}) {
      Case c;
      c.kv_lens = {3, 777, 2100};
      c.hkv = hkv;
      c.hd = hd;
      expect_close<__half>(c, seed++, "gqa");
    }
  }
  Case odd;  // ratio 3 rounds up to the 4-wide kernel
  odd.hq = 24;
  odd.hkv = 8;
  odd.kv_lens = {500, 31};
  expect_close<__nv_bfloat16>(odd, seed++, "ratio 3");
  for (int hd : {8, 96}) {  // generic path
    Case g;
    g.hq = 8;
    g.hkv = 4;
    g.hd = hd;
    g.kv_lens = {1, 129, 600};
    expect_close<__half>(g, seed++, "generic head dim");
  }
}

// The tensor-core kernel reads one block-table entry per 16-position tile when a cache block holds
// whole tiles (16, 32, 64) and one per copy otherwise (8, 24): both, against the references.
TEST(GpuAttention, DecodeOverCacheBlocksOfOtherSizes) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 150;
  for (int block_size : {8, 24, 32, 64}) {
    for (int hkv : {8, 32}) {  // tensor-core (GQA 4) and CUDA-core (MHA) kernels
      Case c;
      c.kv_lens = {1, 40, 777, 4100};
      c.hkv = hkv;
      c.block_size = block_size;
      const std::string what = "block size " + std::to_string(block_size) + ", kv heads " + std::to_string(hkv);
      expect_close<__half>(c, seed++, what.c_str());
      expect_close<__nv_bfloat16>(c, seed++, what.c_str());
    }
  }
}

TEST(GpuAttention, PrefillRowsAreCausal) {
  FDPP_REQUIRE_GPU();
  Case c;
  c.kv_lens = {300, 77};
  c.queries = 300;  // every position of each sequence is a query
  expect_close<__half>(c, 7, "prefill");
  expect_close<__nv_bfloat16>(c, 8, "prefill");
}

TEST(GpuAttention, PrefillKernelMatchesFloat64) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 200;
  for (int hkv : {32, 8}) {
    for (int hd : {128, 64}) {
      Case c;
      c.prefill_kernel = true;
      c.hkv = hkv;
      c.hd = hd;
      c.kv_lens = {300, 77, 1};
      c.queries = 300;  // whole prompts: fully causal
      expect_close<__half>(c, seed++, "prefill fp16");
      expect_close<__nv_bfloat16>(c, seed++, "prefill bf16");
    }
  }
  Case chunk;  // a prompt chunk of 37 tokens at the end of 1000 cached positions, and a 17-token prompt
  chunk.prefill_kernel = true;
  chunk.kv_lens = {1000, 17};
  chunk.queries = 37;
  expect_close<__half>(chunk, seed++, "prefill chunk");
  Case gqa6;  // 24 query heads over 4 KV heads: ratio 6
  gqa6.prefill_kernel = true;
  gqa6.hq = 24;
  gqa6.hkv = 4;
  gqa6.kv_lens = {129};
  gqa6.queries = 129;
  expect_close<__nv_bfloat16>(gqa6, seed++, "prefill gqa 6");
  Case generic;  // head_dim 8: the generic path through the merge kernel
  generic.prefill_kernel = true;
  generic.hq = 8;
  generic.hkv = 4;
  generic.hd = 8;
  generic.kv_lens = {40};
  generic.queries = 40;
  expect_close<__half>(generic, seed++, "prefill generic head dim");
  Case planted;  // out-of-range scores in prefill rows fall back and stay right
  planted.prefill_kernel = true;
  planted.kv_lens = {500};
  planted.queries = 500;
  planted.planted_rows = 2;
  const Result r = run_case<__half>(planted, seed++);
  EXPECT_LT(r.err_vs_f64, 4e-3);
  EXPECT_GT(r.fallback_rows, 0u);
}

// The tiled prefill kernel: prompts off the 128-row tile and 64-position KV tile grids, several
// sequences per launch, GQA 1/4/8, both dtypes, head_dim 64 and 128.
TEST(GpuAttention, PrefillTiledPromptLengths) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 400;
  for (int hkv : {8, 2, 1}) {  // 8 query heads: ratios 1, 4, 8
    for (int hd : {128, 64}) {
      Case c;
      c.prefill_kernel = true;
      c.hq = 8;
      c.hkv = hkv;
      c.hd = hd;
      c.kv_lens = {1, 5, 17, 63, 65, 127, 128, 129, 1000};
      c.queries = 1000;  // whole prompts
      expect_close<__half>(c, seed++, "prefill lengths fp16");
      expect_close<__nv_bfloat16>(c, seed++, "prefill lengths bf16");
    }
  }
  Case longest;  // 4097 tokens: 33 tiles, the last one a single row; sampled reference
  longest.prefill_kernel = true;
  longest.hq = 8;
  longest.hkv = 1;
  longest.kv_lens = {4097};
  longest.queries = 4097;
  longest.check_stride = 7;
  expect_close<__half>(longest, seed++, "prefill 4097 fp16 gqa 8");
  longest.hkv = 8;
  longest.hd = 64;
  expect_close<__nv_bfloat16>(longest, seed++, "prefill 4097 bf16 mha hd 64");
}

// Prompt chunks that start past position 0 (earlier tokens already cached), through an explicit
// row list; fp16 weights in and out of fp16's range; a range nothing fits (every row falls back
// and is still right) and a few planted out-of-range rows.
TEST(GpuAttention, PrefillTiledChunksAndFallback) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 500;
  for (int hd : {128, 64}) {
    Case chunk;  // 200 new tokens at 800..999, 100..299, and a whole 130-token prompt
    chunk.prefill_kernel = true;
    chunk.row_list = true;
    chunk.hq = 16;
    chunk.hkv = 4;
    chunk.hd = hd;
    chunk.kv_lens = {1000, 300, 130};
    chunk.queries = 200;
    expect_close<__half>(chunk, seed++, "prefill chunk fp16");
    expect_close<__nv_bfloat16>(chunk, seed++, "prefill chunk bf16");
  }
  // fp16: phi moved off the scores so that the weights leave fp16's range (phi -12: e^(s - phi)
  // up to ~2^20; phi 9: every weight under 2^-8) or straddle it (phi -8.5): chunks run with bf16 P
  // against split V, or mixed with fp16 P; the results are the same softmax.
  for (const cuda::SoftmaxRange& range : {cuda::SoftmaxRange{-12.0f, -60.0f, 48.0f}, cuda::SoftmaxRange{9.0f, -51.0f, 60.0f},
                                          cuda::SoftmaxRange{-8.5f, -60.0f, 51.0f}}) {
    for (int hd : {128, 64}) {
      Case shifted;
      shifted.prefill_kernel = true;
      shifted.hq = 8;
      shifted.hkv = 2;
      shifted.hd = hd;
      shifted.range = range;
      shifted.kv_lens = {300, 77, 1};
      shifted.queries = 300;
      const Result r = run_case<__half>(shifted, seed++);
      EXPECT_LT(r.err_vs_f64, 4e-3) << "phi " << range.phi << " hd " << hd;
      EXPECT_LT(r.err_vs_cpu, 4e-3) << "phi " << range.phi << " hd " << hd;
      EXPECT_EQ(r.fallback_rows, 0u);
    }
  }
  Case narrow;
  narrow.prefill_kernel = true;
  narrow.hq = 8;
  narrow.hkv = 2;
  narrow.kv_lens = {300, 5};
  narrow.queries = 300;
  narrow.range = {0.0f, -0.01f, 0.01f};
  // The rows recomputed are exactly those with a score outside the range (a row whose first
  // position scores inside [-0.01, 0.01] alone does not fall back).
  auto expect_fallback_count = [](const Result& r) {
    const auto got = static_cast<double>(r.fallback_rows), want = static_cast<double>(r.out_of_range_rows);
    EXPECT_LE(std::abs(got - want), static_cast<double>(r.near_bound_rows));
  };
  const Result all = run_case<__half>(narrow, seed++);
  EXPECT_LT(all.err_vs_f64, 4e-3);
  EXPECT_GT(all.out_of_range_rows, static_cast<uint64_t>(300 * narrow.hq));
  expect_fallback_count(all);
  narrow.hd = 64;
  const Result all64 = run_case<__nv_bfloat16>(narrow, seed++);
  EXPECT_LT(all64.err_vs_f64, 2.5e-2);
  expect_fallback_count(all64);
  Case planted;  // a few rows out of range among many in range
  planted.prefill_kernel = true;
  planted.hq = 8;
  planted.hkv = 8;
  planted.kv_lens = {700, 40};
  planted.queries = 700;
  planted.planted_rows = 3;
  const Result some = run_case<__half>(planted, seed++);
  EXPECT_LT(some.err_vs_f64, 4e-3);
  EXPECT_GT(some.fallback_rows, 0u);
  expect_fallback_count(some);

  Case none;  // ordinary inputs never fall back with the default range
  none.prefill_kernel = true;
  none.kv_lens = {700};
  none.queries = 700;
  EXPECT_EQ(run_case<__nv_bfloat16>(none, seed++).fallback_rows, 0u);
}

TEST(GpuAttention, DecodeOverAnExplicitRowList) {
  FDPP_REQUIRE_GPU();
  Case c;
  c.kv_lens = {5, 900, 64, 2048};
  c.reversed_rows = true;
  expect_close<__half>(c, 300, "reversed rows");
  c.hkv = 32;
  expect_close<__nv_bfloat16>(c, 301, "reversed rows mha");
}

TEST(GpuAttention, FallbackRecomputesOutOfRangeRows) {
  FDPP_REQUIRE_GPU();
  Case c;
  c.kv_lens = {4096, 1000};
  c.planted_rows = 3;  // keys 400x larger: scores far outside [-60, 60]
  c.k_scale = 1.0f;
  const Result r = run_case<__half>(c, 9);
  EXPECT_LT(r.err_vs_f64, 4e-3);
  EXPECT_GT(r.fallback_rows, 0u);

  Case narrow;  // a range nothing fits: every row falls back and is still right
  narrow.kv_lens = {513, 64};
  narrow.range = {0.0f, -0.01f, 0.01f};
  const Result all = run_case<__nv_bfloat16>(narrow, 10);
  EXPECT_LT(all.err_vs_f64, 2.5e-2);
  EXPECT_EQ(all.fallback_rows, static_cast<uint64_t>(2 * narrow.hq));

  Case none;  // ordinary inputs never fall back with the default range
  none.kv_lens = {2048};
  EXPECT_EQ(run_case<__half>(none, 11).fallback_rows, 0u);
}

// A row split more times than the merge block has threads (one KV head at batch 1 over 32K: the
// one-wave grid gives it ~2 splits per SM), so every merge thread adds several batches of partial
// sums and reads several flags and denominators; both head dims, and a planted row that must fall
// back from there.
TEST(GpuAttention, MergeOfMoreSplitsThanThreads) {
  FDPP_REQUIRE_GPU();
  const int sms = device_sm_count();
  ASSERT_GT(sms, 0);
  uint32_t seed = 700;
  for (int hd : {128, 64}) {
    Case c;
    c.hq = 8;
    c.hkv = 1;
    c.hd = hd;
    c.kv_lens = {32768 - 5};
    const int splits = cuda::plan_attention(1, c.hq, c.hkv, c.hd, c.kv_lens[0], sms).num_splits;
    ASSERT_GT(splits, cuda::MergeTraits::kThreads) << "hd " << hd;
    expect_close<__half>(c, seed++, "many splits fp16");
    expect_close<__nv_bfloat16>(c, seed++, "many splits bf16");

    c.planted_rows = 1;  // a key 400x larger: its row's scores leave [-60, 60]
    const Result r = run_case<__half>(c, seed++);
    EXPECT_LT(r.err_vs_f64, 4e-3) << "hd " << hd;
    EXPECT_GT(r.fallback_rows, 0u) << "hd " << hd;
  }
}

// Batches whose (token, kv head) blocks cover the GPU kSingleSplitWaves times run one split per
// row: the split kernel divides, or recomputes a flagged group with the online softmax, and no
// merge is launched. Both split kernels (CUDA cores at group 1, tensor cores at group 4), both
// dtypes, and the fallback on every row.
// The GQA tensor-core decode kernel with fp16 inputs takes fp16 weights per 16-position tile only
// when they fit: phi moved off the scores makes every tile (phi -12: weights up to ~2^20; phi 9:
// all under 2^-8) or some tiles (phi -8.5) run with bf16 weights against split V instead.
TEST(GpuAttention, DecodeTensorCoreTilesOutsideHalfRange) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 700;
  for (const cuda::SoftmaxRange& range : {cuda::SoftmaxRange{-12.0f, -60.0f, 48.0f}, cuda::SoftmaxRange{9.0f, -51.0f, 60.0f},
                                          cuda::SoftmaxRange{-8.5f, -60.0f, 51.0f}}) {
    for (int hd : {128, 64}) {
      Case c;
      c.hq = 32;
      c.hkv = 8;  // ratio 4: the tensor-core kernel
      c.hd = hd;
      c.range = range;
      c.k_scale = 3.0f;  // scores spread over several units, so that tiles differ
      c.kv_lens = {1, 15, 16, 17, 300, 2049};
      const Result r = run_case<__half>(c, seed++);
      EXPECT_LT(r.err_vs_f64, 4e-3) << "phi " << range.phi << " hd " << hd;
      EXPECT_LT(r.err_vs_cpu, 4e-3) << "phi " << range.phi << " hd " << hd;
      EXPECT_EQ(r.fallback_rows, 0u) << "phi " << range.phi << " hd " << hd;
    }
  }
}

TEST(GpuAttention, SingleSplitRowsFinishInTheSplitKernel) {
  FDPP_REQUIRE_GPU();
  const int sms = device_sm_count();
  ASSERT_GT(sms, 0);
  uint32_t seed = 500;
  for (int hkv : {32, 8}) {
    Case c;
    c.hkv = hkv;
    const int seqs = (sms * cuda::SplitKvTraits::kSingleSplitWaves + hkv - 1) / hkv;
    for (int i = 0; i < seqs; ++i) c.kv_lens.push_back(100 + 37 * i % 900);
    const int max_len = *std::max_element(c.kv_lens.begin(), c.kv_lens.end());
    ASSERT_EQ(cuda::plan_attention(seqs, c.hq, c.hkv, c.hd, max_len, sms).num_splits, 1) << "hkv " << hkv;
    expect_close<__half>(c, seed++, "single split fp16");
    expect_close<__nv_bfloat16>(c, seed++, "single split bf16");

    c.range = {0.0f, -0.01f, 0.01f};  // nothing fits: every row falls back inside the split kernel
    const Result all = run_case<__half>(c, seed++);
    EXPECT_LT(all.err_vs_f64, 4e-3) << "hkv " << hkv;
    EXPECT_EQ(all.fallback_rows, static_cast<uint64_t>(seqs * c.hq)) << "hkv " << hkv;
  }
}

// The tensor-core kernel loads before its PDL wait, so its launch is programmatic; the CUDA-core
// kernel's only where its splits are short and its grid small (attention_traits.h). MHA pairs
// within one wave of deep-ring blocks run on tensor cores (batch 1-8 of 32 heads on an H100), so
// there the CUDA-core kernel holds only grids above the PDL bound; the CPU test
// MmaGrid.CudaCoreSplitLaunchesWithPdlOnlyForShortSplitsOfFewPairs checks the rule's other cells.
TEST(GpuAttention, SplitLaunchIsProgrammaticOnTensorCoresOrShortSplits) {
  FDPP_REQUIRE_GPU();
  const int sms = device_sm_count();
  ASSERT_GT(sms, 0);
  if (std::getenv("FDPP_ATTENTION_SPLIT_PDL") != nullptr) GTEST_SKIP() << "FDPP_ATTENTION_SPLIT_PDL forces the plan";
  // 32 KV heads: `few` tokens make at most kCudaCorePdlMaxPairWaves waves of pairs (8 on an H100),
  // `many` more than that (13 on an H100).
  const int64_t few = int64_t{sms} * cuda::SplitKvTraits::kCudaCorePdlMaxPairWaves / 32;
  const int64_t many = few + 5;
  ASSERT_GT(few, 0);
  const cuda::AttentionPlan gqa = cuda::plan_attention(1, 32, 8, 128, 4096, sms);
  const cuda::AttentionPlan mha_long = cuda::plan_attention(many, 32, 32, 128, 2048, sms);
  const cuda::AttentionPlan mha_short = cuda::plan_attention(few, 32, 32, 128, 256, sms);
  const cuda::AttentionPlan mha_short_wide = cuda::plan_attention(many, 32, 32, 128, 256, sms);
  ASSERT_TRUE(gqa.tensor_cores);
  ASSERT_FALSE(mha_long.tensor_cores);
  ASSERT_FALSE(mha_short_wide.tensor_cores);
  EXPECT_TRUE(gqa.split_pdl);
  EXPECT_GT(mha_long.split_size, cuda::SplitKvTraits::kCudaCorePdlMaxSplitPositions);
  EXPECT_FALSE(mha_long.split_pdl);
  EXPECT_LE(mha_short.split_size, cuda::SplitKvTraits::kCudaCorePdlMaxSplitPositions);
  EXPECT_TRUE(mha_short.split_pdl) << (mha_short.tensor_cores ? "tensor cores" : "CUDA cores");
  EXPECT_LE(mha_short_wide.split_size, cuda::SplitKvTraits::kCudaCorePdlMaxSplitPositions);
  EXPECT_FALSE(mha_short_wide.split_pdl) << many << " x 32 pairs cover the GPU more than twice";
}

// The tensor-core (GQA) kernel with either shared-memory ring depth, whichever the plan would
// take, and every copy engine (cp.async; where the GPU has them, bulk row copies and tensor copies
// of whole tiles): group sizes 4 and 8, both head dims, lengths off the tile grid (shorter than one
// tile, one past a split) over NaN in the slots past each end, a batch of mixed lengths, both
// dtypes, cache blocks that split tiles, and the fallback forced.
TEST(GpuAttention, BothTensorCoreRingDepthsAndCopyEnginesMatchFloat64) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 600;
  std::vector<int> engines = {0};  // 0 cp.async, 1 bulk row copies, 2 tensor copies
  if (cuda::bulk_copy_supported()) engines.push_back(1);
  if (cuda::bulk_copy_supported() && cuda::tensor_maps_supported()) engines.push_back(2);
  for (int engine : engines)
  for (int stages : {cuda::SplitKvTraits::kMmaShallowStages, cuda::SplitKvTraits::kMmaStages})
    for (int hkv : {8, 4})
      for (int hd : {64, 128}) {
        Case c;
        c.hkv = hkv;
        c.hd = hd;
        c.mma_stages = stages;
        c.mma_bulk = engine >= 1 ? 1 : 0;
        c.mma_tensor_maps = engine == 2 ? 1 : 0;
        c.nan_past_end = true;
        c.kv_lens = {5, 1000, 4097, 16, 2049, 333};
        const char* engine_name[] = {"cp.async", "bulk rows", "tensor tiles"};
        const std::string what = std::string(engine_name[engine]) + ", ring " + std::to_string(stages) +
                                 ", hkv " + std::to_string(hkv) + ", hd " + std::to_string(hd);
        expect_close<__half>(c, seed++, (what + " fp16").c_str());
        expect_close<__nv_bfloat16>(c, seed++, (what + " bf16").c_str());
        c.block_size = 24;  // tiles straddle cache blocks: one table read per row
        expect_close<__half>(c, seed++, (what + " blocks of 24").c_str());
        c.block_size = 16;
        c.kv_lens = {32768};
        expect_close<__half>(c, seed++, (what + " 32K").c_str());
        c.kv_lens = {513, 64};
        c.range = {0.0f, -0.01f, 0.01f};  // nothing fits: every row falls back and is still right
        const Result all = run_case<__half>(c, seed++);
        EXPECT_LT(all.err_vs_f64, 4e-3) << what << " all rows fall back";
        EXPECT_EQ(all.fallback_rows, static_cast<uint64_t>(2 * c.hq)) << what << " all rows fall back";
        c.kv_lens = {40, 64};  // one split per row: the split's own block recomputes the rows
        const Result single = run_case<__half>(c, seed++);
        EXPECT_LT(single.err_vs_f64, 4e-3) << what << " one split, all rows fall back";
        EXPECT_EQ(single.fallback_rows, static_cast<uint64_t>(2 * c.hq)) << what << " one split, all rows fall back";
      }
  // The plan takes one of the two depths for a GQA group, and tensor copies wherever the GPU has
  // bulk copies and the driver encodes tensor maps (unless a switch says otherwise).
  const int sms = device_sm_count();
  ASSERT_GT(sms, 0);
  const bool switched =
      std::getenv("FDPP_ATTENTION_BULK") != nullptr || std::getenv("FDPP_ATTENTION_TENSOR_MAPS") != nullptr;
  for (int batch : {1, 4, 16, 64}) {
    const cuda::AttentionPlan plan = cuda::plan_attention(batch, 32, 8, 128, 16384, sms);
    EXPECT_TRUE(plan.mma_stages == cuda::SplitKvTraits::kMmaStages ||
                plan.mma_stages == cuda::SplitKvTraits::kMmaShallowStages)
        << "batch " << batch << ": " << plan.mma_stages;
    if (!switched)
      EXPECT_EQ(plan.mma_tensor_maps, cuda::bulk_copy_supported() && cuda::tensor_maps_supported())
          << "batch " << batch;
  }
}

TEST(GpuAttention, SoftmaxRangeValidation) {
  EXPECT_TRUE(cuda::validate_softmax_range({0, -60, 60}, 32768).is_ok());
  EXPECT_FALSE(cuda::validate_softmax_range({0, -60, 85}, 32768).is_ok());
  EXPECT_FALSE(cuda::validate_softmax_range({0, -90, 10}, 32768).is_ok());
  EXPECT_FALSE(cuda::validate_softmax_range({5, 6, 10}, 32768).is_ok());
}

}  // namespace
}  // namespace fdpp

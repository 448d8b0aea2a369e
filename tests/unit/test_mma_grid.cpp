// The decode split's host-side choices (backend/cuda/attention/mma_grid.h), host arithmetic only:
// the H100's figures (132 SMs, 2 deep-ring and 3 shallow-ring blocks per SM at head_dim 128) and
// the choices measured in docs/PERF.md (sessions 11, 12 and 26).
#include <gtest/gtest.h>

#include <tuple>

#include "backend/cuda/attention/mma_grid.h"

namespace fdpp::cuda {
namespace {

constexpr int kSms = 132, kDeepPerSm = 2, kShallowPerSm = 3;
constexpr int kDeep = SplitKvTraits::kMmaStages, kShallow = SplitKvTraits::kMmaShallowStages;

int64_t max_splits_for(int64_t max_kv_len) {
  return (max_kv_len + SplitKvTraits::kMinSplitPositions - 1) / SplitKvTraits::kMinSplitPositions;
}

MmaGrid h100(int64_t batch, int64_t kv_heads, int64_t max_kv_len) {
  return choose_mma_grid(batch * kv_heads, kSms, kDeepPerSm, kShallowPerSm, max_kv_len, max_splits_for(max_kv_len));
}

TEST(MmaGrid, LastWaveFill) {
  EXPECT_DOUBLE_EQ(last_wave_fill(264, 264), 1.0);
  EXPECT_DOUBLE_EQ(last_wave_fill(256, 264), 256.0 / 264.0);
  EXPECT_DOUBLE_EQ(last_wave_fill(512, 264), 512.0 / 528.0);  // two waves, the second 94% full
  EXPECT_DOUBLE_EQ(last_wave_fill(1, 396), 1.0 / 396.0);
}

TEST(MmaGrid, Batch16TakesTheShallowRingFromLongSplits) {
  // 128 pairs: deep 2 splits (256 of 264 slots), shallow 3 (384 of 396): equal fill, shallow wins
  // where its splits hold >= 1024 positions (measured 1.6-2.2% faster from 4K, 2% slower at 1K).
  for (int64_t len : {4096, 16384, 32768, 3968}) {
    const MmaGrid g = h100(16, 8, len);
    EXPECT_EQ(g.stages, kShallow) << len;
    EXPECT_EQ(g.splits, 3) << len;
  }
  const MmaGrid short_rows = h100(16, 8, 1024);
  EXPECT_EQ(short_rows.stages, kDeep);
  EXPECT_EQ(short_rows.splits, 2);
}

TEST(MmaGrid, Batch1And64KeepTheDeepRing) {
  const MmaGrid b1 = h100(1, 8, 32768);  // 33 deep splits fill 264 of 264; 49 shallow fill 392 of 396
  EXPECT_EQ(b1.stages, kDeep);
  EXPECT_EQ(b1.splits, 33);
  const MmaGrid b64 = h100(64, 8, 16384);  // 512 one-split blocks: 97% of two deep waves, 65% of two shallow
  EXPECT_EQ(b64.stages, kDeep);
  EXPECT_EQ(b64.splits, 1);
  const MmaGrid b1_short = h100(1, 8, 1024);  // both clamp to 16 splits of 64 positions
  EXPECT_EQ(b1_short.stages, kDeep);
  EXPECT_EQ(b1_short.splits, 16);
}

TEST(MmaGrid, ShortContextsAndOtherGpus) {
  // Batch 4 at 3968: deep 8 splits and shallow 12 fill alike, but 12 splits hold 330 positions.
  EXPECT_EQ(h100(4, 8, 3968).stages, kDeep);
  // Splits never exceed max_splits nor fall below one.
  const MmaGrid tiny = h100(16, 8, 100);
  EXPECT_EQ(tiny.splits, 2);
  EXPECT_EQ(h100(400, 8, 8192).splits, 1);
  // A GPU where the shallow ring fits no more blocks than the deep one: always deep.
  const MmaGrid same = choose_mma_grid(128, kSms, 2, 2, 32768, max_splits_for(32768));
  EXPECT_EQ(same.stages, kDeep);
  EXPECT_EQ(one_wave_splits(128, kSms, 2, 512), 2);
}

TEST(MmaGrid, MhaRowsOnTensorCoresUpToOneWaveOfPairsOrAnyFromFourKPositions) {
  // Llama-2-7B (32 KV heads) at batch 1-8: 32-256 (token, KV head) pairs within one wave of 264
  // deep-ring slots, measured 0.5-3.0% faster per step on tensor cores (session 27), at any length.
  for (int64_t batch : {1, 2, 4, 8}) {
    EXPECT_TRUE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 256)) << batch;
    EXPECT_TRUE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 32768)) << batch;
  }
  // Batch 9-16 (288-512 pairs, within two waves): the CUDA cores below 4096 positions (batch 16
  // was 0.7% slower per step at 1024), tensor cores from 4096 (batch 16 at 4K-32K 1.4-2.5% faster
  // back to back, session 28).
  for (int64_t batch : {9, 16}) {
    EXPECT_FALSE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 1024)) << batch;
    EXPECT_FALSE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 4095)) << batch;
    EXPECT_TRUE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 4096)) << batch;
    EXPECT_TRUE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 32768)) << batch;
  }
  // Batch 17 and up (more than two waves): the CUDA cores below 4096 positions, tensor cores from
  // 4096 on the wide grid (batch 32-64 at 4K-16K 1.2-1.4% faster back to back, session 29).
  for (int64_t batch : {17, 32, 64}) {
    EXPECT_FALSE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 1024)) << batch;
    EXPECT_FALSE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 4095)) << batch;
    EXPECT_TRUE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 4096)) << batch;
    EXPECT_TRUE(small_group_on_tensor_cores(batch * 32, kSms, kDeepPerSm, 16384)) << batch;
  }
}

TEST(MmaGrid, WideMhaGridsSplitEveryTwoThousandPositionsOrFourFromEightK) {
  auto wide = [](int64_t batch, int64_t len) {
    return wide_small_group_grid(batch * 32, kSms, kDeepPerSm, len, max_splits_for(len));
  };
  // Within two waves of pairs (batch 16: 512 of 528) the one-wave grid applies: no wide grid.
  EXPECT_EQ(wide(16, 32768).splits, 0);
  EXPECT_EQ(wide(1, 32768).splits, 0);
  // Wider grids: deep ring, one split per 2048 positions, per 4096 from 8192 (the rows measured in
  // sessions 29-30); never more than one split per kMinSplitPositions (64 positions: one).
  for (auto [batch, len, splits] : {std::tuple<int64_t, int64_t, int64_t>{64, 4096, 2}, {20, 6144, 3},
                                    {20, 8191, 4}, {64, 8192, 2}, {64, 16384, 4}, {32, 32768, 8},
                                    {17, 8193, 3}, {64, 1024, 1}, {64, 64, 1}}) {
    const MmaGrid g = wide(batch, len);
    EXPECT_EQ(g.stages, kDeep) << batch << " " << len;
    EXPECT_EQ(g.splits, splits) << batch << " " << len;
  }
  // Never more splits than max_splits allows.
  EXPECT_EQ(wide_small_group_grid(64 * 32, kSms, kDeepPerSm, 16384, 3).splits, 3);
}

TEST(MmaGrid, ShortSplitsCutToOneRingPerWarpWhereEverySmKeepsABlock) {
  auto splits = [](int64_t batch, int64_t kv_heads, int64_t len) {
    return full_ring_splits(h100(batch, kv_heads, len).splits, batch * kv_heads, kSms, len);
  };
  EXPECT_EQ(SplitKvTraits::kMmaFullRingPositions, 192);
  // Session 30's rows: GQA batch 1 at 4K 33 (32 once plan_attention rounds splits to 64 positions)
  // -> 22 splits (176 blocks), MHA batch 1 at 1K 8 -> 6.
  EXPECT_EQ(h100(1, 8, 4096).splits, 33);
  EXPECT_EQ(splits(1, 8, 4096), 22);
  EXPECT_EQ(splits(1, 32, 1024), 6);
  // GQA batch 1 at 1K would keep 48 blocks for 132 SMs (15% slower alone): the one-wave grid stays,
  // as at 3K (16 splits, 128 blocks) and batch 2 at 1K (96 blocks).
  EXPECT_EQ(splits(1, 8, 1024), h100(1, 8, 1024).splits);
  EXPECT_EQ(splits(1, 8, 3072), h100(1, 8, 3072).splits);
  EXPECT_EQ(splits(2, 8, 1024), h100(2, 8, 1024).splits);
  // Splits already a ring long or longer stay: GQA batch 1 at 16K (512 positions), batch 4 at 4K.
  EXPECT_EQ(splits(1, 8, 16384), h100(1, 8, 16384).splits);
  EXPECT_EQ(splits(4, 8, 4096), h100(4, 8, 4096).splits);
}

TEST(MmaGrid, CudaCoreSplitLaunchesWithPdlOnlyForShortSplitsOfFewPairs) {
  // Llama-2-7B (32 KV heads), measured per step against PDL on every split launch (session 26).
  // Batch 2-8 at 256-1024 positions (splits of 64-384, at most 256 pairs): PDL kept, 0.5-1.1% faster.
  EXPECT_TRUE(cuda_core_split_pdl(128, 2 * 32, kSms));
  EXPECT_TRUE(cuda_core_split_pdl(384, 8 * 32, kSms));
  // Batch 2-8 at 3968 (splits of 448-1344): 1.1-2.2% faster without.
  EXPECT_FALSE(cuda_core_split_pdl(448, 2 * 32, kSms));
  EXPECT_FALSE(cuda_core_split_pdl(1344, 8 * 32, kSms));
  // Batch 12-16 at 256 (short splits, 384-512 pairs): 0.7-2.1% faster without.
  EXPECT_FALSE(cuda_core_split_pdl(192, 12 * 32, kSms));
  EXPECT_FALSE(cuda_core_split_pdl(320, 16 * 32, kSms));
  // Batch 13 at 1024 and 3968, one split of the whole row: 8.7% and 17% faster without.
  EXPECT_FALSE(cuda_core_split_pdl(1088, 13 * 32, kSms));
  EXPECT_FALSE(cuda_core_split_pdl(4032, 13 * 32, kSms));
  // The pair bound scales with the GPU: 8 x 32 pairs are too many for a 100-SM part.
  EXPECT_FALSE(cuda_core_split_pdl(128, 8 * 32, 100));
}

}  // namespace
}  // namespace fdpp::cuda

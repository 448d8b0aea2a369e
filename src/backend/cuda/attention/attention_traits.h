// Tuning constants of the attention kernels, with the reason for each.
#pragma once

namespace fdpp::cuda {

struct SplitKvTraits {
  // 4 warps: enough loads in flight per block while a (token, kv head) pair with a short context
  // still fills its block; more warps only lengthen the cross-warp reduction.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  // Each thread of the CUDA-core kernel (groups of 1-2) issues kUnroll K and kUnroll V 16-byte
  // loads before using any: 4 + 4 keeps enough bytes in flight for HBM3 latency.
  template <int kMaxGroup>
  static constexpr int kUnrollFor = kMaxGroup <= 2 ? 4 : 2;
  // Splits of the CUDA-core kernel are sized so that the grid covers the GPU about four times (a
  // short context at batch 1 is latency-bound: many small splits keep more loads in flight); the
  // tensor-core kernel's grid is one wave of resident blocks (plan_attention). A split never holds
  // fewer positions than kMinSplitPositions, so the merge stays cheap.
  static constexpr int kWavesTarget = 4;
  static constexpr int kMinSplitPositions = 64;
  // When the (token, kv head) blocks alone cover the GPU this many times (batch 16 of a 32-head
  // MHA model: 512 blocks, 3.9 waves on 132 SMs), each row is one split: the split kernel
  // finishes its rows and the merge launch (~5 us per layer at batch 16) disappears.
  static constexpr int kSingleSplitWaves = 3;
  // The CUDA-core kernel does nothing before its PDL wait (launch.cuh), so an early launch only
  // hides the launch gap (~1% of a short step at a small batch). The likely cost (not profiled):
  // its blocks, placed while the QKV projection still holds SMs, spread unevenly over a grid that
  // fits in one wave, which costs more the longer a block runs and the more blocks there are. So
  // it launches programmatically only where splits hold at most kCudaCorePdlMaxSplitPositions
  // positions and the (token, KV head) pairs cover the GPU at most kCudaCorePdlMaxPairWaves times
  // (cuda_core_split_pdl, mma_grid.h). H100, Llama-2-7B per step against PDL on every split
  // launch (session 26):
  //  * batch 2-8 at 256-1024 (splits of 64-384): +0.5 to +1.1% without PDL (kept);
  //  * batch 2-8 at 3968 (splits of 448-1344): -1.1 to -2.2%; batch 12 at 1024: -1.4%;
  //  * batch 12-16 at 256 (384-512 pairs): -0.7 to -2.1%;
  //  * batch 13 and 16 at 1024 and 3968 (one split of the whole row): -4.4 to -17%. This was the
  //    step's jump from batch 12 to 13, which kSingleSplitWaves was first suspected of.
  // Since session 27 the batch 2-8 cells above run on tensor cores on the H100 (kMhaTensorCoreMinSplits);
  // the rule still governs group-2 models, other GPUs and FDPP_ATTENTION_MHA_TENSOR_CORES=0.
  // The tensor-core kernel always launches programmatically: it loads its first tiles before the
  // wait (Llama-3-8B batch 1-16 +0.9 to +1.5% without PDL).
  static constexpr int kCudaCorePdlMaxSplitPositions = 384;
  static constexpr int kCudaCorePdlMaxPairWaves = 2;
  // GQA groups from this size up run on tensor cores (attention_mma.cuh): with 4+ query heads per
  // KV row, CUDA cores cannot issue the multiply-adds at HBM speed.
  static constexpr int kMinTensorCoreGroup = 3;
  // The tensor-core kernel: each warp takes 16 positions at a time (one m16n8k16 k-step of P.V)
  // and keeps 3 tiles in its shared-memory ring, two of them loading while one is computed:
  // 3 x 8 KB per warp at head_dim 128, 96 KB per block (102 KB with bulk copies' padded rows), two
  // blocks (128 KB in flight) per SM.
  // The shallow ring (2 tiles, one loading while one is computed: 64 KB per block) fits three
  // blocks per SM: fewer bytes in flight per warp but 12 warps to hide latency instead of 8 (ncu,
  // docs/PERF.md session 11: 0.28 eligible warps per scheduler with the deep ring). Forced on
  // every shape it was 2% faster at batch 16 (3 splits on 396 slots) and 11% slower at batch 64
  // (512 one-split blocks: 1.3 waves); plan_attention takes it where its last wave is at least as
  // full as the deep ring's and its splits hold at least kMmaShallowMinSplitPositions positions.
  // H100, 8 KV heads, against the deep ring in the same call (session 11): batch 16 at 4K-32K
  // -1.6 to -2.2% alone and ~-1% back to back (3 splits of 1.3K-11K positions), but +2% at 1K
  // (3 splits of 341: too short for the shallower ring to reach its stride). Batch 1 at 4K (32
  // splits of 128 either way) was 7% faster back to back on the shallow ring, but only where
  // attention follows attention: Llama-3-8B per step at 1K and 3968 unchanged (session 18).
  static constexpr int kMmaTile = 16;
  static constexpr int kMmaStages = 3;
  // A one-wave grid of short rows (batch 1-4) is cut so that each split holds at least
  // kMmaFullRingPositions positions, one deep ring per warp: every warp issues all its tile loads
  // at once. Only where the grid keeps at least one block per SM (full_ring_splits, mma_grid.h).
  // H100, against the one-wave splits (session 30, FDPP_ATTENTION_FULL_RING=0): alone -2 to -5%
  // on GQA batch 1 at 3968-4096, batch 2 at 2K and batch 4 at 1K and MHA batch 1 at 1K; back to
  // back GQA batch 1 at 4K 11.3-11.6 -> 10.6 us, but at 3968 11.0-11.2 -> 11.3-11.6. Per step:
  // Llama-3-8B batch 1 at 3968 -0.6%, batch 2 at 2048, batch 4 at 1024 and Llama-2-7B batch 1 at
  // 1024 unchanged. Splits of 256 were no faster; at 1K GQA batch 1 (6 splits: 48 blocks) the alone
  // time rose 15%, hence the bound of a block per SM.
  static constexpr int64_t kMmaFullRingPositions = int64_t{kMmaTile} * kWarps * kMmaStages;
  static constexpr int kMmaShallowStages = 2;
  static constexpr int kMmaShallowMinSplitPositions = 1024;
  // Smaller groups (MHA) take the tensor-core kernel too where its one-wave grid holds every
  // (token, KV head) pair at least kMhaTensorCoreMinSplits times: batch 1-8 of a 32-head model on
  // the H100. Since its tiles arrive by tensor copies (session 27), H100, Llama-2-7B shape per step
  // against the CUDA-core kernel: batch 2 -0.8 to -0.9%, batch 4 -0.5 to -1.2%, batch 8 -2.1 to
  // -3.0% (1024 and 3968 positions), batch 16 +0.7% at 1024 (see the long-context rule below). Decode
  // attention alone, 32 KV heads: batch 1 at 16K and 32K -5 to -6% back to back (before the tensor
  // copies these rows were 2-4% slower on tensor cores, and a context bound kept them off).
  static constexpr int kMhaTensorCoreMinSplits = 1;
  // From kMhaTensorCoreLongMinContext positions every MHA grid takes the tensor-core kernel. H100,
  // 32 KV heads, forced against the CUDA cores (session 28): batch 16 (512 pairs, 1.9 waves) at
  // 4K / 16K / 32K -2.5 / -1.5 / -1.4% back to back on the one-wave grid (one split). MHA grids
  // beyond one wave keep the CUDA cores below 4096 positions: batch 16 was 0.7% slower per step at
  // 1024 (session 27), and Llama-2-7B batch 32 and 64 at 1024 no faster per step (session 29).
  static constexpr int64_t kMhaTensorCoreLongMinContext = 4096;
  // Grids wider than kMhaTensorCoreLongMaxWaves waves of pairs (batch 17+ of 32 heads) were 0.2%
  // slower there with one split per pair, but faster split into pieces (wide_small_group_grid).
  // H100, back to back against the CUDA cores' one split (session 29, FDPP_ATTENTION_SPLITS):
  // batch 64 at 4K -1.3% (2 splits of 2048; 1, 4 and 8 splits were slower). Pieces of
  // kMhaWideLongSplitPositions from kMhaWideLongMinContext against pieces of 2048 (session 30,
  // same calls): batch 20-64 at 8K-32K -0.3 to -0.7% on every row; below it pieces of 2048 (batch
  // 20 at 6K: 3 splits 0.4% faster than 2 of 3072).
  static constexpr int kMhaTensorCoreLongMaxWaves = 2;
  static constexpr int64_t kMhaWideSplitPositions = 2048;
  static constexpr int64_t kMhaWideLongSplitPositions = 4096;
  static constexpr int64_t kMhaWideLongMinContext = 8192;
};

struct PrefillTraits {
  // 4 warps x 32 query rows = 128 rows of one (sequence, q head) share each K/V tile in shared
  // memory: 128 rows make every K/V byte fetched from L2 feed 128 rows' worth of mma.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  // Two m16 tiles per warp: each K/V fragment read from shared memory feeds two mma; with one,
  // ldmatrix traffic (not the tensor cores) would bound the kernel.
  static constexpr int kRowsPerWarp = 32;
  static constexpr int kBlockRows = kWarps * kRowsPerWarp;
  // KV positions per shared-memory tile (two barriers each): 64 halves the barriers of 32.
  static constexpr int kKvTile = 64;
  // Scores are computed for this many positions at a time: S of 32 rows x 32 positions is 32 fp32
  // registers per lane beside head_dim 128's 128 accumulators (64 positions spill at 255).
  static constexpr int kScoreChunk = 32;
  // Shared-memory rows padded by 16 bytes: the 8 row addresses of an ldmatrix fall in distinct banks.
  static constexpr int kSmemPad = 8;
  // Blocks per SM the registers must allow (255 registers each): one block's loads and barriers
  // hide behind the other's mma. 3 (168 registers) spills at head_dim 64.
  static constexpr int kMinBlocksPerSm = 2;
  // fp16 inputs: a score chunk's P runs as fp16 (one P.V mma on fp16 V, weights rounded 2^-11)
  // when each row's largest weight in the chunk is in [2^kHalfPMinLog2, 2^kHalfPMaxLog2]: none
  // overflows fp16, and the weights fp16 loses to subnormals or zero (32 x 2^-25 at most) are
  // under 2^-12 of the chunk's mass. Other chunks run as bf16 P (fp32's exponent range) against V
  // split exactly into bf16 high + low parts: two mma, weights rounded 2^-9.
  static constexpr float kHalfPMinLog2 = -8.0f;
  static constexpr float kHalfPMaxLog2 = 15.0f;
  // The fallback pass checks this many (row, head) flags per block: small enough that a forced
  // fallback on every row still spreads over many blocks, large enough that the scan is cheap.
  static constexpr int kFallbackScan = 32;
};

struct MergeTraits {
  // One block per (token, q head): threads own head dims; 128 covers head_dim 128 in one pass.
  static constexpr int kThreads = 128;
  // The online-softmax fallback walks the row in chunks of kThreads positions.
  static constexpr int kChunk = kThreads;
  // Partial-sum loads each merge thread issues before adding any (one L2 round trip per batch).
  static constexpr int kLoadsInFlight = 8;
  // V elements each fallback thread loads before adding any (the fallback's first version added
  // them one load at a time).
  static constexpr int kFallbackLoads = 8;
};

}  // namespace fdpp::cuda

// Tuning constants of the attention kernels, with the reason for each.
#pragma once

namespace fdpp::cuda {

struct SplitKvTraits {
  // 4 warps: enough loads in flight per block while a (token, kv head) pair with a short context
  // still fills its block; more warps only lengthen the cross-warp reduction.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  // Each thread issues kUnroll K and kUnroll V 16-byte loads before using any. Small GQA groups
  // have registers to spare, so they keep 4 + 4 loads in flight; the 8-wide group holds 128
  // accumulator and query registers and stays at 2 + 2 to avoid spilling.
  template <int kMaxGroup>
  static constexpr int kUnrollFor = kMaxGroup <= 2 ? 4 : 2;
  // Splits are sized so that the grid covers the GPU about four times (a short context at batch 1
  // is latency-bound: many small splits keep more loads in flight); a split never holds fewer
  // positions than this, so the merge stays cheap.
  static constexpr int kWavesTarget = 4;
  static constexpr int kMinSplitPositions = 64;
};

struct MergeTraits {
  // One block per (token, q head): threads own head dims; 128 covers head_dim 128 in one pass.
  static constexpr int kThreads = 128;
  // The online-softmax fallback walks the row in chunks of kThreads positions.
  static constexpr int kChunk = kThreads;
};

}  // namespace fdpp::cuda

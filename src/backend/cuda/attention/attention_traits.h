// Tuning constants of the attention kernels, with the reason for each.
#pragma once

namespace fdpp::cuda {

struct SplitKvTraits {
  // 4 warps: enough loads in flight per block while a (token, kv head) pair with a short context
  // still fills its block; more warps only lengthen the cross-warp reduction.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  // Each thread issues kUnroll K and kUnroll V 16-byte loads before using any: 2 x 16 x 2 = 64
  // bytes in flight per thread, ~25 KB per SM at 3 blocks/SM, what HBM3 latency needs.
  static constexpr int kUnroll = 2;
  // Splits are sized so that the grid covers the GPU about twice (two waves of blocks); a split
  // never holds fewer positions than this, so the merge stays cheap.
  static constexpr int kWavesTarget = 2;
  static constexpr int kMinSplitPositions = 256;
};

struct MergeTraits {
  // One block per (token, q head): threads own head dims; 128 covers head_dim 128 in one pass.
  static constexpr int kThreads = 128;
  // The online-softmax fallback walks the row in chunks of kThreads positions.
  static constexpr int kChunk = kThreads;
};

}  // namespace fdpp::cuda

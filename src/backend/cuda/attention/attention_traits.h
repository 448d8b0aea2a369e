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
  // Splits are sized so that the grid covers the GPU about four times (a short context at batch 1
  // is latency-bound: many small splits keep more loads in flight); a split never holds fewer
  // positions than this, so the merge stays cheap.
  static constexpr int kWavesTarget = 4;
  static constexpr int kMinSplitPositions = 64;
  // GQA groups from this size up run on tensor cores (attention_mma.cuh): with 4+ query heads per
  // KV row, CUDA cores cannot issue the multiply-adds at HBM speed.
  static constexpr int kMinTensorCoreGroup = 3;
};

struct MergeTraits {
  // One block per (token, q head): threads own head dims; 128 covers head_dim 128 in one pass.
  static constexpr int kThreads = 128;
  // The online-softmax fallback walks the row in chunks of kThreads positions.
  static constexpr int kChunk = kThreads;
};

}  // namespace fdpp::cuda

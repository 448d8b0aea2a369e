// The decode split's host-side choices, as arithmetic that the CPU tests check without a GPU: the
// tensor-core kernel's grid and ring depth (plan_attention's choice for GQA groups), which MHA
// rows take that kernel, and where the CUDA-core kernel launches programmatically.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backend/cuda/attention/attention_traits.h"

namespace fdpp::cuda {

struct MmaGrid {
  int32_t stages = SplitKvTraits::kMmaStages;  // ring depth: kMmaStages or kMmaShallowStages
  int64_t splits = 1;                          // KV splits per (token, KV head)
};

// The fraction of `slots` resident blocks that the last wave of a `blocks` grid fills.
inline double last_wave_fill(int64_t blocks, int64_t slots) {
  const int64_t waves = (blocks + slots - 1) / slots;
  return static_cast<double>(blocks) / static_cast<double>(waves * slots);
}

// Splits that make one wave of resident blocks (per_sm per SM) from blocks_per_split (token, KV
// head) pairs: as many as fit, at least one, at most max_splits (no split shorter than
// kMinSplitPositions).
inline int64_t one_wave_splits(int64_t blocks_per_split, int sm_count, int per_sm, int64_t max_splits) {
  return std::clamp<int64_t>(int64_t{sm_count} * per_sm / blocks_per_split, 1, std::max<int64_t>(1, max_splits));
}

// deep_per_sm / shallow_per_sm: blocks of each ring depth one SM holds (an occupancy query). Each
// depth's grid is one wave; the shallow ring is taken where its last wave is at least as full as
// the deep ring's and its splits hold kMmaShallowMinSplitPositions positions or more
// (attention_traits.h).
inline MmaGrid choose_mma_grid(int64_t blocks_per_split, int sm_count, int deep_per_sm, int shallow_per_sm,
                               int64_t max_kv_len, int64_t max_splits) {
  const int64_t deep = one_wave_splits(blocks_per_split, sm_count, deep_per_sm, max_splits);
  const int64_t shallow = one_wave_splits(blocks_per_split, sm_count, shallow_per_sm, max_splits);
  const bool take_shallow =
      shallow_per_sm > deep_per_sm && max_kv_len / shallow >= SplitKvTraits::kMmaShallowMinSplitPositions &&
      last_wave_fill(blocks_per_split * shallow, int64_t{sm_count} * shallow_per_sm) >=
          last_wave_fill(blocks_per_split * deep, int64_t{sm_count} * deep_per_sm);
  return take_shallow ? MmaGrid{SplitKvTraits::kMmaShallowStages, shallow} : MmaGrid{SplitKvTraits::kMmaStages, deep};
}

// The one-wave grid's splits cut to one per kMmaFullRingPositions positions where its splits are
// shorter and the cut grid still holds a block per SM (attention_traits.h); otherwise `splits`.
inline int64_t full_ring_splits(int64_t splits, int64_t blocks_per_split, int sm_count, int64_t max_kv_len) {
  constexpr int64_t kRing = SplitKvTraits::kMmaFullRingPositions;
  const int64_t cut = (max_kv_len + kRing - 1) / kRing;
  return cut < splits && cut * blocks_per_split >= sm_count ? cut : splits;
}

// Whether a group below SplitKvTraits::kMinTensorCoreGroup (MHA) runs on the tensor-core kernel:
// where its one wave of deep-ring blocks holds every (token, KV head) pair at least
// kMhaTensorCoreMinSplits times, or from kMhaTensorCoreLongMinContext positions (attention_traits.h).
inline bool small_group_on_tensor_cores(int64_t blocks_per_split, int sm_count, int deep_per_sm, int64_t max_kv_len) {
  const int64_t slots = int64_t{sm_count} * deep_per_sm;
  if (slots >= blocks_per_split * SplitKvTraits::kMhaTensorCoreMinSplits) return true;
  return max_kv_len >= SplitKvTraits::kMhaTensorCoreLongMinContext;
}

// The tensor-core grid of a small group (MHA) whose pairs fill more than kMhaTensorCoreLongMaxWaves
// waves of deep-ring blocks, or 0 splits where the one-wave grid applies: deep ring, one split per
// kMhaWideSplitPositions positions, or per kMhaWideLongSplitPositions from kMhaWideLongMinContext
// (at most max_splits, at least one).
inline MmaGrid wide_small_group_grid(int64_t blocks_per_split, int sm_count, int deep_per_sm, int64_t max_kv_len,
                                     int64_t max_splits) {
  const int64_t slots = int64_t{sm_count} * deep_per_sm;
  if (blocks_per_split <= slots * SplitKvTraits::kMhaTensorCoreLongMaxWaves) return {SplitKvTraits::kMmaStages, 0};
  const int64_t split = max_kv_len >= SplitKvTraits::kMhaWideLongMinContext ? SplitKvTraits::kMhaWideLongSplitPositions
                                                                             : SplitKvTraits::kMhaWideSplitPositions;
  const int64_t splits = (max_kv_len + split - 1) / split;
  return {SplitKvTraits::kMmaStages, std::clamp<int64_t>(splits, 1, std::max<int64_t>(1, max_splits))};
}

// Whether the CUDA-core split kernel launches with PDL: where its splits hold at most
// kCudaCorePdlMaxSplitPositions positions and its (token, KV head) pairs cover the GPU at most
// kCudaCorePdlMaxPairWaves times (attention_traits.h says why).
inline bool cuda_core_split_pdl(int64_t split_size, int64_t blocks_per_split, int sm_count) {
  return split_size <= SplitKvTraits::kCudaCorePdlMaxSplitPositions &&
         blocks_per_split <= int64_t{sm_count} * SplitKvTraits::kCudaCorePdlMaxPairWaves;
}

}  // namespace fdpp::cuda

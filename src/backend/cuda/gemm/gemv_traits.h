// Tuning constants of the GEMV kernels (gemv.cu), with the reason for each. Retune with
// bench_linear on a new GPU; the figures in the comments are for the H100 SXM (132 SMs, HBM3,
// ~17 KB of loads in flight per SM needed for 3 TB/s: 3 TB/s x ~0.75 us loaded latency / 132).
#pragma once

namespace fdpp::cuda {

struct GemvTraits {
  // A block of 4 warps owns kRows rows of w and splits K between its 128 threads, so a block's
  // unit of work is small (kRows * K * 2 bytes: 16-32 KB at K = 4096) and the last wave of
  // blocks is short; the cross-warp reduction is one shared-memory pass of kRows * pow2(M)
  // floats per warp.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;

  // Rows of w per block. Every 16-byte x piece a thread loads (from L1) serves kRows weight
  // pieces, so x traffic through L1 is M / kRows times the weight traffic: at M = 8 and 4 rows,
  // 2 x loads per w load keeps the L1 pipe under a third busy at 3 TB/s. kRows * pow2(M) <= 32
  // (the reduction leaves at most one value per lane).
  template <int M>
  static constexpr int kRowsFor = M <= 4 ? 2 : 4;

  // 16-byte weight loads per row that each thread issues before using any, and the resident
  // blocks per SM the register budget must allow (__launch_bounds__), chosen together so that
  // ptxas neither spills nor starves the loads (sm_90, CUDA 13):
  //   M 1-4: 4 x 2 rows = 128 B per thread in flight; <= 128 registers (64-126 used), 4 blocks
  //          = 16 warps per SM -> 64 KB per SM in flight.
  //   M 5-6: 2 x 4 rows = 128 B; 4 * M accumulators and 2 * M x pieces need 140-152 registers:
  //          3 blocks (<= 168), 12 warps -> 48 KB per SM.
  //   M 7-8: 1 x 4 rows = 64 B; 2 x 4 rows needed 168+ registers and spilled, 1 x 4 fits 127
  //          -> 4 blocks, 16 warps -> 32 KB per SM, still ~2x what HBM latency asks.
  template <int M>
  static constexpr int kUnrollFor = M <= 4 ? 4 : M <= 6 ? 2 : 1;
  template <int M>
  static constexpr int kMinBlocksPerSmFor = M <= 4 ? 4 : M <= 6 ? 3 : 4;

  // The scalar path (K % 8 != 0 or unaligned pointers) loads 2 bytes at a time: more loads in
  // flight make up a little for their size (<= 128 registers at 4 blocks per SM for every M).
  // It serves odd shapes only; its speed is secondary.
  template <int M>
  static constexpr int kUnrollScalarFor = M <= 4 ? 8 : 4;
};

}  // namespace fdpp::cuda

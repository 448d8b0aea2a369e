// Tuning constants of the GEMV kernels (gemv.cu), with the reason for each. Retune with
// bench_linear on a new GPU; the figures in the comments are for the H100 SXM (132 SMs, HBM3).
#pragma once

namespace fdpp::cuda {

struct GemvTraits {
  // A block of 4 warps owns kRows rows of w and splits K between its 128 threads, so a block's
  // unit of work is small (kRows * K * 2 bytes: 16-64 KB at K = 4096) and the last wave of blocks
  // is short; the cross-warp reduction is one shared-memory pass of kRows * M floats per warp.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;

  // Rows of w per block. Every 16-byte x piece a thread loads (from L1) serves kRows weight
  // pieces, so x traffic through L1 is M / kRows times the weight traffic: at M = 8 and 4 rows,
  // 2 x loads per w load keeps the L1 pipe under a third busy at 3 TB/s. kRows * pow2(M) <= 32
  // (the reduction leaves at most one value per lane).
  template <int M>
  static constexpr int kRowsFor = M <= 4 ? 2 : 4;

  // 16-byte weight loads per row that each thread issues before using any. Bytes in flight per
  // thread = 16 * kUnroll * kRows = 128 B; with 8+ resident warps per SM that is >= 32 KB per
  // SM, past the ~17 KB that 3 TB/s x ~0.75 us loaded HBM latency needs (Little's law). Larger M
  // holds more x registers per piece, hence the smaller unroll there.
  template <int M>
  static constexpr int kUnrollFor = M <= 4 ? 4 : 2;

  // The scalar path (K % 8 != 0 or unaligned pointers) loads 2 bytes at a time: more loads in
  // flight make up a little for their size. It serves odd shapes only; its speed is secondary.
  static constexpr int kUnrollScalar = 8;

  // Resident blocks per SM the register budget must allow: 4 x 128 threads -> <= 128 registers
  // per thread, 16 warps per SM.
  static constexpr int kMinBlocksPerSm = 4;
};

}  // namespace fdpp::cuda

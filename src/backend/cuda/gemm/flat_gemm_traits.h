// Tuning constants of the flat GEMM (flat_gemm.cu), each with its reason. Retune with
// bench_linear on a new GPU; the figures are for the H100 SXM: 132 SMs, 228 KB of shared memory
// per SM, HBM3 at ~3 TB/s, so ~3 MB of loads must be in flight GPU-wide (3 TB/s x ~1 us loaded
// latency), ~23 KB per SM when every SM streams.
#pragma once

namespace fdpp::cuda {

struct FlatGemmTraits {
  // The largest M (tokens) one launch serves. At M = 64 the tensor cores run ~0.2 mma.m16n8k16
  // per clock per SM to keep pace with 3 TB/s of weights, well inside mma.sync's rate; at 128 they
  // would need twice that and the kernel would stop being bandwidth-bound: a tiled GEMM's job.
  static constexpr int kMaxM = 64;

  // 4 warps, each owning kRowTilesPerWarp x 16 weight rows and every token: each A fragment
  // (weights) feeds M / 8 mmas and each B fragment (x) feeds kRowTilesPerWarp mmas. Two row
  // tiles halve the shared-memory reads of x against one (at M = 64: 32 KB of x reads per 16 KB
  // weight tile instead of 64 KB) for 64 fp32 accumulators per thread at M = 64.
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kRowTilesPerWarp = 2;

  // Weight rows (output features) per CTA. With x read from L2 once per CTA and K-range, x
  // traffic is M / kBlockN of the weight bytes (half at M = 64): 128 keeps it below HBM's share.
  static constexpr int kBlockN = kWarps * kRowTilesPerWarp * 16;

  // K elements per pipeline stage: 128-byte rows, i.e. 8 16-byte chunks; storing chunk c of row r
  // at c ^ (r % 8) makes both the cp.async stores and the ldmatrix reads conflict-free.
  static constexpr int kKTile = 64;

  // Pipeline depth. A stage holds a 16 KB weight tile plus an x tile of MT x 8 rows (1-8 KB);
  // kStages - 1 stages are in flight while one is computed: 64 KB of weights per CTA (MT <= 4,
  // 85-100 KB of shared memory) or 48 KB (MT = 8, 96 KB). Both leave 2 CTAs per SM resident
  // (<= 113 KB each), so one SM keeps 96-128 KB in flight, 4-5x what HBM latency asks.
  template <int MT>
  static constexpr int kStagesFor = MT <= 4 ? 5 : 4;
  static constexpr int kMinCtasPerSm = 2;

  // Split-K: when ceil(N / kBlockN) CTAs would leave SMs idle (N = 4096: 32 CTAs, ~2 MB in
  // flight and ~94 GB/s asked of each busy SM, near one SM's limit), K is split over the CTAs of
  // a thread-block cluster, just enough to give kSplitTargetCtasPerSm CTA per SM. The partial sums
  // meet in distributed shared memory in a fixed order (deterministic, no atomics, no workspace,
  // no second kernel: a second launch would cost ~2 us, 15% of an 11 us [4096, 4096] GEMM).
  // kMaxSplits: the largest portable cluster. kMinKTilesPerSplit: a split shorter than 4 tiles
  // would spend more time filling its pipeline than streaming.
  static constexpr int kSplitTargetCtasPerSm = 1;
  static constexpr int kMaxSplits = 8;
  static constexpr int kMinKTilesPerSplit = 4;

  // fp32 partial tile [MT x 8 tokens][kBlockN + kPartialPad] in shared memory after the main
  // loop: a row stride of 132 floats puts the 32 values an mma accumulator store writes (8 rows
  // x 4 token pairs) in 32 different banks.
  static constexpr int kPartialPad = 4;

  // Token rows a thread reduces per batch: 4 x kMaxSplits = 32 distributed-shared-memory loads
  // in flight, so the ~200-cycle remote latency is paid once per 4 rows, not once per value.
  static constexpr int kReduceBatch = 4;

  // ---- the streamed mainloop (flat_gemm_streamed.cuh), M <= 8 x kStreamedMaxMTiles ----------
  // Weights go from HBM straight into mma A fragments (16-byte loads, K permuted inside each
  // 32-element chunk so a fragment is one load: no shared memory, no barrier in the loop) and x
  // through L1, like the GEMV. The first version (4 warps x 32 rows, 128 B of each row per step)
  // ran no faster than the pipelined mainloop (77% of the read ceiling): both scatter 128-byte
  // pieces over 128 rows 8 KB apart, while the GEMV (95-105%) reads whole rows. So a CTA owns only
  // kStreamedRows rows (one mma row tile) and its warps split K in interleaved pieces: per step
  // the CTA reads 1 KB contiguous of each of its 16 rows, and N = 4096 still makes 256 CTAs
  // (two per SM) without split K.
  static constexpr int kStreamedRows = 16;
  // 32-element chunks per row a warp reads per step (4 lanes x 16 bytes each): 256 contiguous bytes
  // per row and warp, 8 16-byte loads per thread (rows g and g + 8), and the next step's loads are
  // issued before this step's mmas (registers double-buffered): 4 KB in flight per warp. Tried and
  // not kept: weights through a 4-stage shared-memory ring, 3 steps in flight (branch
  // wip/ring-hybrid). At M 9-16 it was 4-9 points faster back to back on the bench's plain
  // products, but slower alone on [6144, 4096] and up to 5% slower per decode step at batch 9-14
  // with the flat GEMM forced (docs/PERF.md sessions 18-19).
  static constexpr int kStreamedChunks = 4;
  static constexpr int kStreamedKStep = kWarps * kStreamedChunks * 32;  // elements of K per CTA step: 512
  // n-tiles of 8 tokens the streamed variants serve (M <= 16): per thread 2 x 32 registers of
  // weights, 16 per n-tile of x and 4 per n-tile of accumulators.
  static constexpr int kStreamedMaxMTiles = 2;
  // Resident CTAs per SM the register budget must allow (<= 128 registers a thread): 4 CTAs = 16
  // warps, up to 64 KB of weight loads in flight per SM, ~3x what HBM latency asks (header).
  static constexpr int kStreamedMinCtasPerSm = 4;
  // The deep ring (FlatGemmPlan::weight_buffers = 3): a grid of one split whose CTAs all fit at
  // kStreamedDeepMinCtasPerSm per SM (N <= 16 x 3 x 132 = 6336 on the H100: Llama-3-8B's QKV,
  // 384 CTAs) leaves a quarter of the register file idle, room for a third buffer of weights per
  // warp (96 of 160-168 registers). With two buffers a warp requests step s + 2 only after step
  // s's mmas, so one step (4 KB) is in flight while it computes: [6144, 4096] streamed at 88-89%
  // back to back at M 1-8 and 79-82% at M = 16, whose mmas take twice as long. A third buffer keeps
  // 8 KB per warp in flight through the mmas: 99-100% at M 1-8 (21.4 -> 20.7 us alone) and 91-93%
  // at M = 16 (22.9 -> 22.4 us), Llama-3-8B decode steps at batch 2-8 -0.2 to -0.8% (H100,
  // docs/PERF.md session 31). The loop is unrolled by 6 so that the buffer and x-stage indices are
  // constants: a runtime x-stage index (unrolled by 3) spilled and ran at 83%, slower than two
  // buffers alone. Variants: one n-tile (M 1-8) plain or with the scale-only norm, with or without
  // the QKV epilogue; two n-tiles (M 9-16) plain products only: there the scale-only norm's extra
  // mmas made the deep variant slower (24.5 against 23.8 us alone), and the weighted norm's
  // spilled 56 bytes.
  static constexpr int kStreamedDeepBuffers = 3;
  static constexpr int kStreamedDeepMinCtasPerSm = 3;
  // CTAs per SM the shared-memory carveout must hold (flat_gemm.cu): the register limit's 4 (x
  // stages: 16 KB per CTA at one n-tile, 32 KB at two); the rest of the SM's 256 KB is L1, which
  // keeps the x slices the SM's CTAs all read.
  static constexpr int kStreamedCarveoutCtas = 4;
  // Largest M at which the dispatcher fuses the RMSNorm into the streamed kernel. The two-n-tile
  // norm variant (M 9-16) runs 1.2-1.4x the plain kernel (bench_linear "flat+norm", H100,
  // 2026-11-23: [12288, 4096] 54 vs 43 us), more than the separate RMSNorm launch it replaces
  // (~4 us); at M <= 8 the fused variant costs 1-10%.
  static constexpr int kNormFusionMaxM = 8;
  // The same for a norm whose weight is folded into the projection (FlatGemmParams::
  // norm_scale_only): no weight loads or prologue multiply, and the two-n-tile variant keeps 128
  // registers without spilling (the weighted one spills 20 bytes). H100, Llama-2-7B decode (docs/
  // PERF.md, session 10): batch 8 5.49 -> 5.22-5.23 ms (the weighted prologue's multiplies gone
  // from QKV and gate/up), batch 16 within the run-to-run spread (5.78-5.81 against 5.79-5.88).
  static constexpr int kScaleOnlyNormFusionMaxM = 16;
  // Split K for the streamed mainloop. N = 4096 gives 256 CTAs of 16 rows for the 528 resident
  // slots (4 per SM): ~2 CTAs = 32 KB of loads in flight per SM, and the GEMV and the flat GEMM
  // both stream [4096, 4096] at 76-78% where [12288, 4096] (768 CTAs) reaches 94%. Splitting K
  // over a cluster of 2 doubles the CTAs in flight and halves each one's run (a shorter tail), for
  // a 1 KB exchange through distributed shared memory at the end: rank 1 stores its partial into
  // rank 0's shared memory (st.async) and leaves, rank 0 waits on an mbarrier for the bytes
  // (flat_gemm_streamed.cuh). The first exchange, between two cluster-wide barriers with every
  // rank reading the others' partials, cost ~2 us of a 14 us [4096, 4096] launch back to back;
  // the push exchange 13.7-14.7 -> 13.4-14.0 us at M 1-16 (H100, docs/PERF.md session 14),
  // st.async in the writers 13.6 -> 12.7 us at M 1-8 (session 15).
  // Policy (choose_splits): the fewest splits that fill kStreamedSplitTargetCtasPerSm CTAs per SM,
  // no split shorter than kStreamedMinStepsPerSplit steps, every cluster resident in one wave.
  // kStreamedSplitByDefault: whether kAuto plans use the policy at all (FDPP_FLAT_GEMM_SPLIT_K=0/1
  // overrides it). On: bench_linear on the H100 (2026-12-05, docs/PERF.md) timed 2 splits on the
  // N = 4096 shapes at 80-81% back to back instead of 77-78% ([4096, 4096]) and 92.4% instead of
  // 80.9% ([4096, 11008], 36.4 us instead of 39.4 alone); on N >= 6144 (which the policy leaves
  // at one split) 2 splits lost 4-12%.
  static constexpr bool kStreamedSplitByDefault = true;
  static constexpr int kStreamedSplitTargetCtasPerSm = kStreamedMinCtasPerSm;
  static constexpr int kStreamedMinStepsPerSplit = 4;
};
}  // namespace fdpp::cuda

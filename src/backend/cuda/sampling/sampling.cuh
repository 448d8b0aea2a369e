// Token sampling on the GPU: repetition penalty, greedy, temperature, top-k, top-p and min-p for
// R rows of logits, never synchronising — the host only copies the R tokens out.
//
// Per row, the pipeline of the host sampler (runtime/sampler.h; runtime/device_sampling.h says
// which requests qualify):
//   0. repetition penalty p != 1: each of the row's distinct previous ids gets logit / p where the
//      logit is positive, else logit * p, in place (a kernel of its own, the host's operations).
//   1. temperature <= 0 (or NaN): argmax of the logits, lowest index on ties, NaN never chosen
//      unless all are NaN (then 0) — exactly runtime::argmax.
//   2. z = logit / temperature (IEEE division, as the host), NaN -> -inf. If max z is not finite
//      (all -inf, or +inf present): the lowest index of max z, as the host.
//   3. top-k: keep z >= the k-th largest z (every tie at the boundary kept, as the host and HF).
//   4. probabilities exp(z - max z) over the kept tokens, held as fixed-point integers
//      q = round(p / p_max * 2^40): every sum below is exact and independent of summation order,
//      so a (seed, step) gives the same token on every run (of one build: expf may round
//      differently in another CUDA version). A token with p < 2^-41 p_max has q = 0
//      and is never drawn (the host would draw it with that probability).
//   5. top-p: keep the smallest set of largest probabilities whose mass >= top_p * mass(top-k set);
//      among tokens tied at the boundary value the lowest ids are kept first (as the host).
//   6. min-p: drop tokens whose q < min_p * 2^40 (p < min_p * p_max), as the host (up to the
//      rounding of q at the boundary).
//   7. draw: r uniform in [0, kept mass) from a hash of (seed, step); the token is the first id,
//      in ascending id order, whose inclusive prefix sum of kept mass exceeds r (as the host).
// The thresholds of 3 and 5 are found without sorting: a search over the 32-bit order-preserving
// key of z that splits the key window in four per pass over the row (at most 16 passes; the
// counts and masses of the four parts are per-thread sums, then one cluster reduction), with the
// candidates copied to shared memory as soon as at most 2048 remain, so that later steps do not
// reread the row. Counted on a 152k row of N(0, 2) logits: ~2.4 passes for temperature only, ~8.5 with top-k,
// ~10.5 with top-p (passes outside the search window skip exp()), one more with min-p. Each row
// is spread over a cluster of up to 8 blocks (one SM each), each owning a slice of the ids; the
// reductions meet through distributed shared memory, one cluster barrier each. The token does not
// depend on the cluster size: every deciding value is an exact integer sum or a max.
//
// The row index is not hashed: a seeded request draws the same tokens whatever batch it is in.
// Rows that share (seed, step) and logits share the token, like two host samplers with one seed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/sampling/sampling_row.h"
#include "fdpp/status.h"

namespace fdpp::cuda {

// Named SampleParams (launch_sample's, as RmsNormParams is launch_rmsnorm's) so as not to shadow
// fdpp::SamplingParams, the request's parameters, inside fdpp::cuda.
struct SampleParams {
  float* logits = nullptr;                     // [rows, vocab] fp32 device; the penalty rewrites its ids in place
  int64_t rows = 0;
  int64_t vocab = 0;                           // 1 .. kMaxSampleVocab
  const DeviceSamplingRow* row_params = nullptr;  // [rows] device
  int32_t* tokens_out = nullptr;               // [rows] device
  // Blocks (a thread-block cluster) per row, 1 .. kMaxSampleBlocksPerRow; 0: the most, up to 8,
  // whose clusters are all resident at once for these rows (FDPP_SAMPLER_CTAS overrides that).
  int blocks_per_row = 0;
  // Optional (both or neither): row r's distinct previous ids are penalty_ids[penalty_offsets[r],
  // penalty_offsets[r + 1]), device; rows whose repetition_penalty is 1 are left alone.
  const int32_t* penalty_ids = nullptr;
  const int64_t* penalty_offsets = nullptr;    // [rows + 1]
};

// Masses are q <= 2^40 per token summed in 64 bits: vocab <= 2^23 cannot overflow them.
inline constexpr int64_t kMaxSampleVocab = int64_t{1} << 23;
// The portable cluster size.
inline constexpr int kMaxSampleBlocksPerRow = 8;

// One cluster of blocks per row (rows > 65535 take several launches); enqueues on `stream`, never
// synchronises. kInvalidArgument for a vocab or blocks_per_row out of range or a null pointer
// (rows > 0).
Status launch_sample(const SampleParams& p, cudaStream_t stream);

}  // namespace fdpp::cuda

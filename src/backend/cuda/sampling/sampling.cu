// The GPU sampler (semantics and tie rules in sampling.cuh). One cluster of up to kClusterCtas
// blocks of 1024 threads per row, each block owning a contiguous slice of the row's ids; every value below
// that decides a threshold or a token is either an integer sum (exact in any order) or a max, so a
// row's token is a pure function of its logits, parameters, seed and step.
#include <algorithm>
#include <array>
#include <map>
#include <mutex>
#include <string>

#include "backend/cuda/cluster.cuh"
#include "backend/cuda/cuda_utils.cuh"
#include "backend/cuda/env_switch.h"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/ptx.cuh"
#include "backend/cuda/sampling/sampling.cuh"

namespace fdpp::cuda {
namespace {

// Why 1024 threads and a cluster per row: each threshold step is a pass over the row (up to ~150k
// logits), and a pass is bound by its per-id arithmetic (division, order key, window tests, exp:
// ~60-80 instructions), so the step costs what one pass costs on the SMs a row gets. One block
// per row spent ~40 us a pass on a 128k row (H100, docs/PERF.md session 15); a cluster of 8 (the
// portable size) gives each row 8 SMs, and every reduction one cluster barrier more.
constexpr int kThreads = 1024;
constexpr int kClusterCtas = kMaxSampleBlocksPerRow;  // the exchange buffers' size
constexpr int kWarps = kThreads / 32;
static_assert(kWarps == 32, "the block reductions give one warp total to each lane");
// Threshold candidates held in shared memory once the search window is this small: 24 KB.
constexpr int kCandidates = 2048;
// Sub-ranges a threshold search step splits its key window into: 2 key bits per pass. (8 would
// save ~2 of ~10 passes on a 152k row but spills registers at 1024 threads.)
constexpr int kSplit = 4;
static_assert(kSplit <= 4, "a thread's ids per sub-range are packed 16 bits each into one word");
// Ids per thread per tile of the index-order scans: a tile is 4096 consecutive ids.
constexpr int kScanPerThread = 4;
constexpr float kMassScale = 1099511627776.0f;  // 2^40: the most likely token's mass
constexpr int32_t kNoIndex = 0x7fffffff;

// Float -> uint32 with the same order (-inf lowest; NaN never reaches it), and back.
__device__ __forceinline__ uint32_t order_key(float z) {
  const uint32_t b = __float_as_uint(z);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float key_value(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// splitmix64's finaliser; applied to the seed, then to that xor the step, so every (seed, step)
// pair gets its own well-mixed 64 bits (a bijection in step for a fixed seed: no repeats).
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One row of logits seen through the temperature, and this block's slice of it.
struct Row {
  const float* logits;  // [vocab]
  int32_t vocab;        // < 2^23: 32-bit ids and loop counters (registers are tight at 1024 threads)
  int32_t begin, end;   // this block's ids [begin, end): slice `rank` of the cluster's near-equal ones
  float temperature;    // > 0
  float zmax;           // max of z over the row, finite once masses are asked for

  // z = logit / temperature, NaN -> -inf (as the host sampler).
  __device__ __forceinline__ float z(int32_t i) const {
    const float v = __fdiv_rn(logits[i], temperature);
    return isnan(v) ? -INFINITY : v;
  }
  // round(exp(z - zmax) * 2^40): 2^40 for the most likely token, 0 for -inf.
  __device__ __forceinline__ uint64_t mass(float zi) const {
    return __float2ull_rn(expf(zi - zmax) * kMassScale);
  }
};

// ---- block reductions; each ends with a barrier so its shared scratch can be reused at once ----

// v[] summed over the block, element by element; every thread gets the totals.
template <int N>
__device__ void block_sum(uint64_t (&v)[N]) {
  __shared__ uint64_t partial[N][kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int n = 0; n < N; ++n) {
    for (int off = 16; off > 0; off >>= 1) v[n] += __shfl_xor_sync(0xffffffffu, v[n], off);
    if (lane == 0) partial[n][warp] = v[n];
  }
  __syncthreads();
#pragma unroll
  for (int n = 0; n < N; ++n) {
    v[n] = partial[n][lane];
    for (int off = 16; off > 0; off >>= 1) v[n] += __shfl_xor_sync(0xffffffffu, v[n], off);
  }
  __syncthreads();
}

// (value, index) is better than (best_value, best_index): larger value, then lower index;
// kNoIndex (nothing seen) loses to everything. A strict total order, so the max is unique.
__device__ __forceinline__ bool better(float value, int32_t index, float best_value, int32_t best_index) {
  if (index == kNoIndex) return false;
  if (best_index == kNoIndex) return true;
  return value > best_value || (value == best_value && index < best_index);
}

__device__ void block_argmax(float& value, int32_t& index) {
  __shared__ float partial_value[kWarps];
  __shared__ int32_t partial_index[kWarps];
  auto warp_argmax = [&] {
    for (int off = 16; off > 0; off >>= 1) {
      const float v = __shfl_xor_sync(0xffffffffu, value, off);
      const int32_t i = __shfl_xor_sync(0xffffffffu, index, off);
      if (better(v, i, value, index)) {
        value = v;
        index = i;
      }
    }
  };
  warp_argmax();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) {
    partial_value[warp] = value;
    partial_index[warp] = index;
  }
  __syncthreads();
  value = partial_value[lane];
  index = partial_index[lane];
  warp_argmax();
  __syncthreads();
}

// Exclusive prefix sum of v in thread order; the block's total goes to `total`.
__device__ uint64_t block_exclusive_scan(uint64_t v, uint64_t& total) {
  __shared__ uint64_t warp_totals[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  uint64_t inclusive = v;
  for (int off = 1; off < 32; off <<= 1) {
    const uint64_t other = __shfl_up_sync(0xffffffffu, inclusive, off);
    if (lane >= off) inclusive += other;
  }
  if (lane == 31) warp_totals[warp] = inclusive;
  __syncthreads();
  // Every warp scans the 32 warp totals itself (lane j: totals of warps 0..j).
  const uint64_t own_total = warp_totals[lane];
  uint64_t totals_inclusive = own_total;
  for (int off = 1; off < 32; off <<= 1) {
    const uint64_t other = __shfl_up_sync(0xffffffffu, totals_inclusive, off);
    if (lane >= off) totals_inclusive += other;
  }
  const uint64_t warp_offset = __shfl_sync(0xffffffffu, totals_inclusive - own_total, warp);
  total = __shfl_sync(0xffffffffu, totals_inclusive, 31);
  __syncthreads();
  return warp_offset + inclusive - v;
}

// ---- cluster reductions: every block's values, gathered by every block in rank order ----

// The largest number of 64-bit values one exchange carries (select_threshold's totals).
constexpr int kExchangeMax = 5;

// Two exchange buffers alternate, so one cluster barrier per exchange suffices: a block writes
// buffer b again only two exchanges later, after a barrier every block reached once it had read
// buffer b.
struct ClusterScratch {
  uint64_t slot[2][kExchangeMax];                      // this block's values, read by the others
  uint64_t gathered[2][kClusterCtas][kExchangeMax];   // every block's, copied here
};

struct Cluster {
  ClusterScratch& scratch;
  int rank;
  int parity = 0;
  // Blocks of this row, 1 .. kClusterCtas: the grid's x (a special register, not held).
  __device__ static int ctas() { return static_cast<int>(gridDim.x); }

  // Every block's v[0..N) (the same in all of a block's threads), in gathered[buffer][rank][n];
  // returns the buffer.
  template <int N>
  __device__ int gather(const uint64_t (&v)[N]) {
    static_assert(N <= kExchangeMax, "kExchangeMax values per exchange");
    const int b = parity;
    parity ^= 1;
    if (threadIdx.x == 0) {
#pragma unroll
      for (int n = 0; n < N; ++n) scratch.slot[b][n] = v[n];
    }
    // One block: a block barrier, no cluster instruction (so the kernel also runs where clusters
    // do not exist, and one block per row pays no cluster barriers).
    if (ctas() > 1) {
      detail::cluster_arrive();  // release: the slot is written
      detail::cluster_wait();    // acquire: every block's slot is
    } else {
      __syncthreads();
    }
    if (static_cast<int>(threadIdx.x) < ctas() * N) {
      const int from = static_cast<int>(threadIdx.x) / N, n = static_cast<int>(threadIdx.x) % N;
      scratch.gathered[b][from][n] =
          from == rank ? scratch.slot[b][n]
                       : detail::load_cluster_u64(detail::cluster_smem_address(detail::smem_u32(&scratch.slot[b][n]), from));
    }
    __syncthreads();
    return b;
  }
  // v[] summed over the cluster (block_sum first), element by element, in rank order.
  template <int N>
  __device__ void sum(uint64_t (&v)[N]) {
    block_sum(v);
    const int b = gather(v);
#pragma unroll
    for (int n = 0; n < N; ++n) {
      v[n] = 0;
      for (int c = 0; c < ctas(); ++c) v[n] += scratch.gathered[b][c][n];
    }
  }
  // The cluster's best (value, index) (block_argmax first).
  __device__ void argmax(float& value, int32_t& index) {
    block_argmax(value, index);
    const uint64_t packed[1] = {uint64_t{__float_as_uint(value)} << 32 | static_cast<uint32_t>(index)};
    const int b = gather(packed);
    for (int c = 0; c < ctas(); ++c) {
      const uint64_t other = scratch.gathered[b][c][0];
      const float v = __uint_as_float(static_cast<uint32_t>(other >> 32));
      const auto i = static_cast<int32_t>(static_cast<uint32_t>(other));
      if (better(v, i, value, index)) {
        value = v;
        index = i;
      }
    }
  }
  // The value of block `from` (v the same in all of a block's threads).
  __device__ uint64_t broadcast(uint64_t v, int from) {
    const uint64_t one[1] = {v};
    return scratch.gathered[gather(one)][from][0];
  }
};

// ---- passes over a row ----

// Index of the largest logit (temperature <= 0: raw logits, NaN skipped) or of the largest z
// (temperature > 0), lowest index on ties; kNoIndex when every logit is NaN. `max_value` gets it.
__device__ int32_t argmax_pass(const Row& row, bool scaled, float& max_value, Cluster& cluster) {
  float best = -INFINITY;
  int32_t best_index = kNoIndex;
  for (int32_t i = row.begin + static_cast<int32_t>(threadIdx.x); i < row.end; i += kThreads) {
    const float v = scaled ? row.z(i) : row.logits[i];
    // Each thread visits ascending ids, so a strict > keeps its lowest index on ties.
    if (!isnan(v) && (best_index == kNoIndex || v > best)) {
      best = v;
      best_index = static_cast<int32_t>(i);
    }
  }
  cluster.argmax(best, best_index);
  max_value = best;
  return best_index;
}

// Within this block's slice: the first id (ascending) whose inclusive prefix sum of weight(id)
// from row.begin exceeds r; -1 when the slice's total is <= r. Tiles of 4096 consecutive ids, one
// block scan each, stopping at the tile that holds the answer.
template <typename Weight>
__device__ int32_t first_prefix_exceeding_in_slice(const Row& row, const Weight& weight, uint64_t r) {
  __shared__ int32_t found;
  constexpr int32_t kTile = kThreads * kScanPerThread;
  uint64_t carry = 0;  // total weight of the tiles before this one
  for (int32_t base = row.begin; base < row.end; base += kTile) {
    const int32_t first = base + static_cast<int32_t>(threadIdx.x) * kScanPerThread;
    uint64_t w[kScanPerThread];
    uint64_t own = 0;
#pragma unroll
    for (int j = 0; j < kScanPerThread; ++j) {
      w[j] = first + j < row.end ? weight(first + j) : 0;
      own += w[j];
    }
    uint64_t tile_total;
    const uint64_t before = carry + block_exclusive_scan(own, tile_total);
    if (before <= r && r < before + own) {  // exactly one thread holds r
      uint64_t cumulative = before;
      for (int j = 0; j < kScanPerThread; ++j) {
        cumulative += w[j];
        if (cumulative > r) {
          found = first + j;
          break;
        }
      }
    }
    carry += tile_total;
    __syncthreads();
    if (carry > r) return found;  // carry is the same in every thread: a uniform exit
  }
  return -1;
}

// The first id of the row (ascending) whose inclusive prefix sum of weight(id) exceeds r; -1 when
// the row's total is <= r. Every block sums its slice, the blocks' totals place r in one slice,
// that block walks it, and its answer goes to all.
template <typename Weight>
__device__ int32_t first_prefix_exceeding(const Row& row, const Weight& weight, uint64_t r, Cluster& cluster) {
  uint64_t own[1] = {0};
  for (int32_t i = row.begin + static_cast<int32_t>(threadIdx.x); i < row.end; i += kThreads) own[0] += weight(i);
  block_sum(own);
  const int b = cluster.gather(own);
  uint64_t before = 0;  // the weight of the slices before the one holding r
  int holder = -1;
  for (int c = 0; c < Cluster::ctas(); ++c) {
    const uint64_t slice = cluster.scratch.gathered[b][c][0];
    if (holder < 0 && r < before + slice) holder = c;
    else if (holder < 0) before += slice;
  }
  if (holder < 0) return -1;  // uniform: every block saw the same totals
  int32_t token = -1;
  if (holder == cluster.rank) token = first_prefix_exceeding_in_slice(row, weight, r - before);
  return static_cast<int32_t>(static_cast<int64_t>(cluster.broadcast(static_cast<uint64_t>(static_cast<int64_t>(token)), holder)));
}

// measure(key >= t) of a threshold search: a count of ids (top-k) or their mass (top-p).
struct Threshold {
  uint32_t key;     // t: the largest key with measure(key >= t) >= target
  uint64_t above;   // measure(key > t), < target
  uint64_t at_key;  // measure(key == t)
};

// Shared memory of the threshold search's last steps, reused by both searches of a row.
struct Candidates {
  uint32_t key[kCandidates];
  uint64_t measure[kCandidates];
  uint32_t count;
};

// The largest key t in [lo, hi] with measure(key >= t) >= target, given measure(key >= lo) =
// at_least_lo >= target and measure(key > hi) = above. Each step splits the window [lo, hi] into
// kSplit sub-ranges, measures them in one pass (every thread keeps its own sums: no atomics) and
// keeps the sub-range holding t, so 32 key bits take at most 16 steps. Once the window holds
// <= kCandidates ids of nonzero measure they are copied to shared memory and the remaining steps
// read only those. Only ids inside the window are measured: exp() is not paid for the others.
__device__ Threshold select_threshold(const Row& row, bool by_mass, uint32_t lo, uint32_t hi,
                                      uint64_t at_least_lo, uint64_t above, uint64_t target,
                                      Candidates& candidates, Cluster& cluster) {
  auto measure_of = [&](float z) -> uint64_t { return by_mass ? row.mass(z) : 1; };
  bool compacted = false;
  uint32_t num_candidates = 0;
  while (lo < hi) {
    // Sub-range j is [bound[j], bound[j + 1]) with bound[kSplit] = hi + 1; some may be empty.
    const uint64_t width = uint64_t{hi} - lo + 1;
    uint32_t bound[kSplit];
#pragma unroll
    for (int j = 0; j < kSplit; ++j) bound[j] = lo + static_cast<uint32_t>(width * j / kSplit);
    uint64_t upper[kSplit] = {};     // upper[j]: measure of [bound[j], hi], j >= 1
    uint64_t packed_counts = 0;      // ids per sub-range, 16 bits each (<= 8192 per thread)
    auto visit = [&](uint32_t key, uint64_t m) {
      int sub = 0;
#pragma unroll
      for (int j = 1; j < kSplit; ++j) {
        if (key >= bound[j]) {
          upper[j] += m;
          ++sub;
        }
      }
      packed_counts += uint64_t{1} << (16 * sub);
    };
    if (compacted) {
      for (uint32_t j = threadIdx.x; j < num_candidates; j += kThreads) {
        const uint32_t key = candidates.key[j];
        if (key >= lo && key <= hi) visit(key, candidates.measure[j]);
      }
    } else {
      for (int32_t i = row.begin + static_cast<int32_t>(threadIdx.x); i < row.end; i += kThreads) {
        const float z = row.z(i);
        const uint32_t key = order_key(z);
        if (key < lo || key > hi) continue;
        const uint64_t m = measure_of(z);
        if (m != 0) visit(key, m);
      }
    }
    // Block totals: upper[1..] as they are, the counts two per word (block totals < 2^32).
    uint64_t totals[kSplit - 1 + kSplit / 2];
#pragma unroll
    for (int j = 1; j < kSplit; ++j) totals[j - 1] = upper[j];
#pragma unroll
    for (int j = 0; j < kSplit; j += 2) {
      const uint64_t pair = packed_counts >> (16 * j);
      totals[kSplit - 1 + j / 2] = (pair & 0xffffu) | ((pair >> 16) & 0xffffu) << 32;
    }
    cluster.sum(totals);
    auto count_of = [&](int j) { return (totals[kSplit - 1 + j / 2] >> (32 * (j % 2))) & 0xffffffffu; };
    // upper[] falls with j, so the last sub-range whose start still reaches the target holds t.
    uint32_t new_lo = lo, new_hi = bound[1] - 1;
    uint64_t new_above = above + totals[0], window = count_of(0);
#pragma unroll
    for (int j = 1; j < kSplit; ++j) {
      if (above + totals[j - 1] >= target) {
        new_lo = bound[j];
        at_least_lo = above + totals[j - 1];
        new_hi = j + 1 < kSplit ? bound[j + 1] - 1 : hi;
        new_above = above + (j + 1 < kSplit ? totals[j] : 0);
        window = count_of(j);
      }
    }
    lo = new_lo;
    hi = new_hi;
    above = new_above;
    if (!compacted && lo < hi && window <= kCandidates) {
      // Slot order depends on the atomics' order; the search only sums, so that is harmless.
      if (threadIdx.x == 0) candidates.count = 0;
      __syncthreads();
      for (int32_t i = row.begin + static_cast<int32_t>(threadIdx.x); i < row.end; i += kThreads) {
        const float z = row.z(i);
        const uint32_t key = order_key(z);
        if (key < lo || key > hi) continue;
        const uint64_t m = measure_of(z);
        if (m != 0) {
          const uint32_t slot = atomicAdd(&candidates.count, 1u);
          candidates.key[slot] = key;
          candidates.measure[slot] = m;
        }
      }
      __syncthreads();
      num_candidates = candidates.count;
      compacted = true;
    }
  }
  __syncthreads();  // the candidates may be overwritten by the next search
  return {lo, above, at_least_lo - above};
}

// params: global memory, read where each field is needed rather than held in registers.
__device__ int32_t sample_row(Row row, const DeviceSamplingRow* params, Candidates& candidates, Cluster& cluster) {
  float zmax;
  const int32_t max_index = argmax_pass(row, /*scaled=*/true, zmax, cluster);
  row.zmax = zmax;
  // All -inf (NaN included), or +inf present: the limit of the distribution is the argmax.
  if (!isfinite(row.zmax)) return max_index;
  const uint32_t max_key = order_key(row.zmax);

  // top-k: the k-th largest key; every id at or above it stays (ties kept).
  uint32_t kept_from = 0;  // keys >= kept_from are in the top-k set
  if (params->top_k > 0 && params->top_k < row.vocab) {
    kept_from = select_threshold(row, /*by_mass=*/false, 0, max_key, static_cast<uint64_t>(row.vocab),
                                 0, static_cast<uint64_t>(params->top_k), candidates, cluster)
                    .key;
  }
  uint64_t topk_sum[1] = {0};
  for (int32_t i = row.begin + static_cast<int32_t>(threadIdx.x); i < row.end; i += kThreads) {
    const float z = row.z(i);
    if (order_key(z) >= kept_from) topk_sum[0] += row.mass(z);
  }
  cluster.sum(topk_sum);
  const uint64_t topk_mass = topk_sum[0];  // >= 2^40: the most likely id is in it with mass 2^40

  // top-p: the boundary key, then how many ids tied at it (lowest first) the target needs.
  uint32_t threshold = kept_from;
  int32_t last_tied_kept = row.vocab;  // ids with key == threshold are kept up to this id
  uint64_t kept_mass = topk_mass;
  if (params->top_p < 1.0f) {
    const double wanted = ceil(static_cast<double>(params->top_p) * static_cast<double>(topk_mass));
    const uint64_t target =
        wanted < 1.0 ? 1 : wanted >= static_cast<double>(topk_mass) ? topk_mass : static_cast<uint64_t>(wanted);
    const Threshold t =
        select_threshold(row, /*by_mass=*/true, kept_from, max_key, topk_mass, 0, target, candidates, cluster);
    threshold = t.key;
    // Ids tied at the key share one z, hence one mass: keep the fewest that reach the target.
    const uint64_t tied_mass = row.mass(key_value(t.key));
    const uint64_t tied_needed = (target - t.above + tied_mass - 1) / tied_mass;
    const uint64_t tied_count = t.at_key / tied_mass;
    kept_mass = t.above + tied_needed * tied_mass;
    if (tied_count > tied_needed) {
      const uint32_t tied_key = t.key;
      last_tied_kept = first_prefix_exceeding(
          row, [&](int32_t i) -> uint64_t { return order_key(row.z(i)) == tied_key ? 1 : 0; }, tied_needed - 1,
          cluster);
    }
  }

  // min-p: drop ids whose probability is under min_p times the most likely id's, i.e. whose mass
  // is under min_p * 2^40 (the most likely id's is 2^40, so it always stays). Tied ids share a
  // mass, so min-p removes whole key values and never splits the top-p ties. The kept mass is
  // summed again over the final set (one more pass, only when min-p is on).
  uint64_t min_mass = 0;
  const float min_p = params->min_p;
  if (min_p > 0.0f) min_mass = static_cast<uint64_t>(ceil(static_cast<double>(min_p) * kMassScale));
  auto kept_mass_of = [&](int32_t i) -> uint64_t {
    const float z = row.z(i);
    const uint32_t key = order_key(z);
    if (key < threshold || (key == threshold && i > last_tied_kept)) return 0;
    const uint64_t m = row.mass(z);
    return m >= min_mass ? m : 0;
  };
  if (min_mass > 0) {
    uint64_t kept_sum[1] = {0};
    for (int32_t i = row.begin + static_cast<int32_t>(threadIdx.x); i < row.end; i += kThreads)
      kept_sum[0] += kept_mass_of(i);
    cluster.sum(kept_sum);
    kept_mass = kept_sum[0];
  }

  // Draw: r uniform in [0, kept_mass), the first id whose kept prefix mass exceeds it.
  const uint64_t r = __umul64hi(mix64(mix64(params->seed) ^ params->step), kept_mass);
  const int32_t token = first_prefix_exceeding(row, kept_mass_of, r, cluster);
  return token >= 0 ? token : max_index;  // the sums are exact: never -1
}

// One block per row: logit / p where positive, else logit * p, for the row's previous ids (the
// host's apply_repetition_penalty: the same IEEE operations). The ids of a row are distinct (the
// caller's contract), so no two threads touch one logit; an id outside the row is skipped.
constexpr int kPenaltyThreads = 256;
__global__ void __launch_bounds__(kPenaltyThreads) penalty_kernel(const SampleParams p) {
  enter_dependent_grid();
  const int64_t row = blockIdx.x;
  const float penalty = p.row_params[row].repetition_penalty;
  if (penalty == 1.0f) return;
  float* logits = p.logits + row * p.vocab;
  for (int64_t j = p.penalty_offsets[row] + threadIdx.x; j < p.penalty_offsets[row + 1]; j += kPenaltyThreads) {
    const int32_t id = p.penalty_ids[j];
    if (id < 0 || id >= p.vocab) continue;
    const float l = logits[id];
    logits[id] = l > 0.0f ? l / penalty : l * penalty;
  }
}

// Grid (ctas, rows), clusters of ctas <= kClusterCtas blocks along x: block x of cluster y owns
// slice x of row y.
__global__ void __launch_bounds__(kThreads) sample_kernel(const SampleParams p) {
  enter_dependent_grid();
  __shared__ Candidates candidates;
  __shared__ ClusterScratch scratch;
  const int64_t row_index = blockIdx.y;
  const int rank = static_cast<int>(blockIdx.x), ctas = static_cast<int>(gridDim.x);
  const DeviceSamplingRow* params = p.row_params + row_index;
  const auto vocab = static_cast<int32_t>(p.vocab);
  const int32_t slice = (vocab + ctas - 1) / ctas;
  const int32_t begin = min(vocab, rank * slice), end = min(vocab, begin + slice);
  Row row{p.logits + row_index * p.vocab, vocab, begin, end, params->temperature, 0.0f};
  Cluster cluster{scratch, rank};
  int32_t token;
  if (row.temperature > 0.0f) {
    token = sample_row(row, params, candidates, cluster);
  } else {  // greedy, NaN temperature included
    float unused;
    token = argmax_pass(row, /*scaled=*/false, unused, cluster);
    if (token == kNoIndex) token = 0;  // every logit NaN
  }
  if (rank == 0 && threadIdx.x == 0) p.tokens_out[row_index] = token;
  // No block leaves while another may still read its exchange slots.
  if (ctas > 1) {
    detail::cluster_arrive();
    detail::cluster_wait();
  }
}

}  // namespace

namespace {

// Blocks per row for `rows` rows: FDPP_SAMPLER_CTAS (1..kClusterCtas) where set, else the most
// (a power of two up to kClusterCtas) whose clusters are all resident at once on this device:
// 1024-thread blocks at 64 registers hold a whole SM each, and a cluster's blocks must share a
// GPC, so 16 rows of 8 may not fit where 16 of 4 do. Queried once per device.
int sampler_ctas(int64_t rows) {
  static const int forced = [] {
    const int n = env_switch("FDPP_SAMPLER_CTAS");
    return n >= 1 && n <= kClusterCtas ? n : 0;
  }();
  if (forced > 0) return forced;
  static std::mutex mu;
  static std::map<int, std::array<int, kClusterCtas + 1>> resident;  // device -> clusters of each size
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    (void)cudaGetLastError();
    return 1;
  }
  std::lock_guard<std::mutex> lock(mu);
  auto it = resident.find(device);
  if (it == resident.end()) {
    std::array<int, kClusterCtas + 1> counts{};
    for (int c = 1; c <= kClusterCtas; c *= 2) {
      cudaLaunchAttribute attr = cluster_attribute(static_cast<unsigned>(c));
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(static_cast<unsigned>(c), 1, 1);
      config.blockDim = dim3(kThreads, 1, 1);
      config.attrs = &attr;
      config.numAttrs = 1;
      if (cudaOccupancyMaxActiveClusters(&counts[c], sample_kernel, &config) != cudaSuccess) {
        (void)cudaGetLastError();  // this size cannot run: never chosen
        counts[c] = 0;
      }
    }
    it = resident.emplace(device, counts).first;
  }
  for (int c = kClusterCtas; c > 1; c /= 2)
    if (it->second[c] >= rows) return c;
  return 1;
}

}  // namespace

Status launch_sample(const SampleParams& p, cudaStream_t stream) {
  if (p.rows <= 0) return Status::ok();
  if (p.vocab <= 0 || p.vocab > kMaxSampleVocab)
    return {ErrorCode::kInvalidArgument,
            "sample: vocab " + std::to_string(p.vocab) + " outside [1, " + std::to_string(kMaxSampleVocab) + "]"};
  if (p.logits == nullptr || p.row_params == nullptr || p.tokens_out == nullptr)
    return {ErrorCode::kInvalidArgument, "sample: null logits, row_params or tokens_out"};
  if (p.blocks_per_row < 0 || p.blocks_per_row > kClusterCtas)
    return {ErrorCode::kInvalidArgument, "sample: blocks_per_row " + std::to_string(p.blocks_per_row) +
                                             " outside [0, " + std::to_string(kClusterCtas) + "]"};
  if ((p.penalty_ids == nullptr) != (p.penalty_offsets == nullptr))
    return {ErrorCode::kInvalidArgument, "sample: penalty_ids and penalty_offsets go together"};
  if (p.penalty_offsets != nullptr) {
    // One block per row along grid.x (up to 2^31 - 1 rows), before the rows' sampling launches.
    if (p.rows > 0x7fffffff) return {ErrorCode::kInvalidArgument, "sample: too many rows"};
    const Status st = launch_status(
        launch_kernel(penalty_kernel, dim3(static_cast<unsigned>(p.rows)), dim3(kPenaltyThreads), 0, stream, 1, p),
        "sample: repetition penalty");
    if (!st.is_ok()) return st;
  }
  // Rows go along grid.y: at most 65535 a launch.
  constexpr int64_t kRowsPerLaunch = 65535;
  const unsigned ctas = static_cast<unsigned>(p.blocks_per_row > 0 ? p.blocks_per_row
                                                                    : sampler_ctas(std::min(p.rows, kRowsPerLaunch)));
  for (int64_t first = 0; first < p.rows; first += kRowsPerLaunch) {
    SampleParams part = p;
    part.rows = std::min(kRowsPerLaunch, p.rows - first);
    part.logits = p.logits + first * p.vocab;
    part.row_params = p.row_params + first;
    part.tokens_out = p.tokens_out + first;
    const Status st = launch_status(
        launch_kernel(sample_kernel, dim3(ctas, static_cast<unsigned>(part.rows)), dim3(kThreads), 0, stream, ctas, part),
        "sample");
    if (!st.is_ok()) return st;
  }
  return Status::ok();
}

}  // namespace fdpp::cuda

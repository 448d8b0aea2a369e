// FlashDecoding++'s heuristic dataflow for linear layers: for a weight [N, K] on a given GPU,
//   M <= m1       -> GEMV on CUDA cores (memory-bound; tensor cores would idle on padding),
//   m1 < M <= m2  -> flat GEMM on tensor cores (M padded to 8, N tiled across the SMs),
//   M > m2        -> cuBLASLt's tiled GEMM (compute-bound).
// `fdpp tune` measures the three on the present GPU for every linear shape of a model and writes
// the inflection points m1, m2 to a JSON table; the CUDA backend reads it at start and uses the
// built-in defaults for shapes it does not list. Plain C++: tested without a GPU.
#pragma once

#include <compare>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace fdpp {

enum class LinearImpl { kGemv, kFlatGemm, kCublasLt };
const char* linear_impl_name(LinearImpl impl);  // "gemv", "flat_gemm", "cublaslt"

struct LinearInflection {
  int64_t m1 = 0;  // largest M served by the GEMV
  int64_t m2 = 0;  // largest M served by the flat GEMM (>= m1)
  bool operator==(const LinearInflection&) const = default;
};

// Used for shapes the table does not list. m2: `fdpp tune --shape llama2-7b` on the H100
// (2026-11-23, docs/PERF.md) found 7-8 on three of five shapes (4 on down, 16-24 on O and the LM
// head). m1 = 1: the same tune found m1 = 3 timing each linear alone, but inside the decode step
// the flat GEMM beats the GEMV at M = 2-3 (H100, docs/PERF.md session 22: Llama-3-8B step 5.677
// -> 5.314 ms at batch 2, 6.262 -> 5.324 at batch 3; under PDL its CTAs start streaming weights
// earlier), while the GEMV keeps M = 1 (5.271 against 5.450 with every linear on the flat GEMM).
inline constexpr LinearInflection kDefaultLinearInflection{1, 8};
// The default for the fused gate/up projection with the gated SiLU epilogue, whose alternative on
// cuBLASLt is the products plus a silu_mul launch: on the H100 at M = 16 (Llama-2-7B [22016,
// 4096], docs/PERF.md session 9) the flat gated kernel took 65.4 us back to back against 69.0 for
// cuBLASLt + silu_mul. Its norm stays a separate launch above M = 8 (kNormFusionMaxM).
inline constexpr LinearInflection kDefaultGatedLinearInflection{1, 16};

// The largest M the GEMV or the flat GEMM serves (kFlatGemmMaxM; checked where both are seen):
// above it cuBLASLt is the only candidate, so `fdpp tune` sweeps every M only up to here.
inline constexpr int64_t kSmallMKernelsMaxM = 64;

// Built-in exceptions to kDefaultLinearInflection for shapes the decode step measured otherwise
// (H100, docs/PERF.md session 25, Llama-2-7B shape, alternating rounds against the default):
// - Llama-2-7B's down projection [4096, 11008] keeps the flat GEMM up to M = 16: batch 9-16 steps
//   took 1.1-1.7% less than with cuBLASLt above M = 8.
// - Its QKV projection [12288, 4096] keeps it up to M = 12: batch 10-12 −0.1 to −2.2%, batch 9
//   −0.5% to +0.2%. Up to M = 16 made batch 16 1% slower.
// - Llama-3-8B's (and Mistral-7B's) QKV projection [6144, 4096] takes the flat GEMM at M = 1 too:
//   the batch-1 step took 1.5% less (session 33, `fdpp tune`'s step check: 5.124 against 5.204 ms;
//   the deep weight ring of session 31 made the flat GEMM the faster one alone as well).
// Not Llama-3-8B's down [4096, 14336], QKV [6144, 4096] or O [4096, 4096] above M = 8: there the
// flat GEMM at M 9-12 left the step level or made it up to 4% slower (session 33's step check:
// down +1.4 to +1.7% at batch 9-15).
struct BuiltinShapeInflection {
  int64_t n, k;
  LinearInflection at;
};
inline constexpr BuiltinShapeInflection kBuiltinShapeInflections[] = {
    {4096, 11008, {1, 16}}, {12288, 4096, {1, 12}}, {6144, 4096, {0, 8}}};

// The inflection points without a tuned table entry: kDefaultGatedLinearInflection for the fused
// gate/up projection, else a kBuiltinShapeInflections entry for [n, k], else kDefaultLinearInflection.
LinearInflection builtin_linear_inflection(int64_t n, int64_t k, bool gated);

LinearImpl choose_linear_impl(const LinearInflection& at, int64_t m);

struct LinearTableKey {
  std::string gpu;  // cudaDeviceProp::name, e.g. "NVIDIA H100 80GB HBM3"
  DType dtype = DType::kF16;
  int64_t n = 0, k = 0;
  auto operator<=>(const LinearTableKey&) const = default;
};

class LinearTable {
 public:
  // Throws fdpp::Error: kNotFound for a missing file, kParse naming the file, the entry and the
  // field for anything malformed (wrong type, unknown dtype, m1 > m2, non-positive sizes).
  static LinearTable load(const std::filesystem::path& path);
  // Writes the table (creating parent directories); throws kIo naming the path on failure.
  void save(const std::filesystem::path& path) const;

  void set(const LinearTableKey& key, LinearInflection at) { entries_[key] = at; }
  std::optional<LinearInflection> find(const LinearTableKey& key) const;
  LinearInflection find_or_default(const LinearTableKey& key) const {  // ungated shapes
    return find(key).value_or(builtin_linear_inflection(key.n, key.k, false));
  }
  size_t size() const { return entries_.size(); }

 private:
  std::map<LinearTableKey, LinearInflection> entries_;
};

// Where the table lives: $FDPP_LINEAR_TABLE if set, else $XDG_CACHE_HOME/fdpp/linear_table.json,
// else $HOME/.cache/fdpp/linear_table.json (the same place `fdpp tune` writes by default).
std::filesystem::path default_linear_table_path();

// One M of a tuning sweep: each implementation's time in µs, or a negative value where it cannot
// run this M (the GEMV above its largest M, the flat GEMM above its own).
struct LinearTiming {
  int64_t m = 0;
  double gemv_us = -1, flat_us = -1, cublas_us = -1;
};

// The inflection points that lose the least against the fastest implementation over the sweep:
// the (m1, m2) minimising the sum over M of time(chosen) / time(best) - 1, where an
// implementation that cannot run an M is never chosen for it. timings: ascending M, starting at 1.
LinearInflection inflection_from_timings(const std::vector<LinearTiming>& timings);

// The step check of `fdpp tune`. A sweep times each linear alone, back to back; inside the decode
// step its neighbours overlap it (PDL), and there the choice can flip (H100, docs/PERF.md session
// 33: the GEMV at M = 2 for Llama-2-7B's O and down made the step 1.7% slower although
// bench_linear had it 6% faster on O back to back). So where a tuned entry would change the choice, whole decode steps decide.

// The M in 1..max_m where the two inflections choose different implementations, ascending.
std::vector<int64_t> batches_where_choices_differ(const LinearInflection& a, const LinearInflection& b,
                                                  int64_t max_m);

// One decode batch's step time with the shape's tuned entry and with its current one (ms; a
// non-positive value where that run gave no time).
struct StepComparison {
  int64_t batch = 0;
  double tuned_ms = 0, current_ms = 0;
};

// The inflection points the steps support: at each compared batch the tuned choice stands only
// where its step was faster by more than `noise` (a fraction, e.g. 0.003), elsewhere the current
// choice stays; batches not compared keep the choice both agree on (up to kSmallMKernelsMaxM).
// The result is the (m1, m2) losing least against those choices (inflection_from_timings).
// The step check's noise: a choice moves only for a step faster by more than this fraction (H100,
// session 33: three runs of one table at one batch spread by up to 0.3%).
inline constexpr double kStepCheckNoise = 0.003;
LinearInflection inflection_from_step_times(const LinearInflection& tuned, const LinearInflection& current,
                                            const std::vector<StepComparison>& steps, double noise);

}  // namespace fdpp

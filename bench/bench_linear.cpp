// Linear-layer benchmark for small M (decode): the CUDA-core GEMV (backend/cuda/gemm/gemv.cuh,
// M <= 8) and the tensor-core flat GEMM (flat_gemm.cuh, M <= 64) against cuBLASLt
// (CublasLtLinear, same [N, K] weights) in the same run, fp16, on the Llama-2-7B and Llama-3-8B
// linear shapes and the Llama-3 LM head, M in {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024} (cuBLASLt
// alone above 64). Where the flat GEMM's streamed mainloop runs (M <= 16) the pipelined one is
// timed too ("pipelined µs"). "chosen" is the implementation the dispatcher's table picks (fdpp
// tune's file where one exists, else the built-in defaults) and "chosen vs best" its time over
// the fastest of the three, alone and back to back ("b2b": the decode step's view, where PDL lets a
// kernel's first weight loads overlap its predecessor; the built-in inflection points were chosen
// from decode steps, so the two views can disagree at small M).
//
// Per (shape, M, kernel): µs is the median of --iters single launches, each between two CUDA
// events with a 30 µs spin kernel queued ahead, so the host's launch cost is not in the figure;
// "b2b µs" is --iters launches queued back to back between two events, divided by their number
// (what a CUDA graph of a decode step sees). Weights rotate through copies totalling >= 256 MB
// (2 for the LM head), more than the 50 MB L2, so HBM serves every weight byte. GB/s counts
// weight + x + out bytes; the ceiling is the 3.0 TB/s read figure of DESIGN.md section 2. Each
// fdpp output is checked against cuBLASLt's (max |diff| / max |cuBLASLt|). Data: hashed values in
// [-2, 2). "splits" is the flat GEMM's split-K (cluster size) for the shape; where the streamed
// mainloop runs, the other choice (2 splits where the plan takes 1, else 1) is timed as well
// ("alt splits"), so that the split-K policy is decided on one binary; on one-split launches (where
// the deep weight ring may run, flat_gemm_traits.h) a log line times the other count of weight
// buffers ("flat deep" is 3, "flat strm" 2). "read" is the read ceiling
// at the shape's own size: a plain streaming read of the same weight bytes (stream_read.h),
// single and back to back, % of 3.0 TB/s. On the gate/up shapes, log lines also time the gated
// SiLU epilogue (the rows taken as interleaved gate/up pairs, out [M, N / 2]) against the same
// kernel followed by the interleaved silu_mul, and cuBLASLt followed by it ("+silu"): what the
// fusion saves per launch; and the two forms of a norm folded into the weights (docs/kernels.md):
// the flat gated kernel's scale-only norm ("flat gated+scale") and cuBLASLt followed by the
// row-scaled silu_mul ("cuBLASLt+scaled"). The table's "flat+norm" and "flat+scale" columns time
// the streamed kernel with the weighted and the scale-only norm.
//
// Usage: bench_linear [--iters N] [--quick] [--shape NAME] [--m M1,M2,...] [--splits S1,S2,...]
//   --quick: the first two shapes only; --shape: one shape by name ("L3-8B lm_head"); --m: these M;
//   --splits: also time the streamed kernel with these forced split counts (log lines only).
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <cstdlib>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "backend/cuda/gemm/cublaslt_linear.h"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/gemv.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "backend/linear_table.h"
#include "core/tensor.h"
#include "gpu_spin.h"
#include "bench_common.h"
#include "random_fill.h"
#include "stream_read.h"

namespace {

constexpr double kCeiling = fdpp::bench::kReadCeiling;
constexpr size_t kMinRotationBytes = size_t{256} << 20;  // > 5x the H100's 50 MB L2
constexpr int kSpinUs = 30;

struct Shape {
  const char* name;
  int64_t N, K;
};

const std::vector<Shape> kShapes = {
    {"L2-7B qkv", 12288, 4096}, {"L2-7B o", 4096, 4096},       {"L2-7B gate+up", 22016, 4096},
    {"L2-7B down", 4096, 11008}, {"L3-8B qkv", 6144, 4096},     {"L3-8B gate+up", 28672, 4096},
    {"L3-8B down", 4096, 14336}, {"L3-8B lm_head", 128256, 4096},
};

// One kernel's figures at one (shape, M); ran == false where the kernel does not serve that M.
struct Timing {
  bool ran = false;
  double us = 0, b2b_us = 0, err = 0;  // err: max |diff| / max |cuBLASLt| (fdpp kernels only)
};

struct Row {
  std::string shape;
  int64_t N = 0, K = 0, M = 0;
  int splits = 0;  // flat GEMM split-K (0 where it does not run)
  Timing gemv, flat, flat_pipelined, lt;  // flat: the mainloop the kernel picks; flat_pipelined: forced (M <= 16)
  Timing flat_alt;                        // the streamed kernel with alt_splits CTAs along K
  int alt_splits = 0;
  double read_us = 0, read_b2b_us = 0;    // a plain read of the weight bytes (the shape's read ceiling)
  fdpp::LinearImpl chosen = fdpp::LinearImpl::kCublasLt;  // what the dispatcher's table picks for (N, K, M)
  double flat_norm_us = 0;                // the streamed kernel with its RMSNorm prologue (0: not run)
  double flat_scale_us = 0;               // the same with a folded norm weight (norm_scale_only)
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// launch(i) enqueues one run on weight copy i (mod the number of copies); i keeps counting up
// through warm-up and both measurements, so consecutive launches never reuse a copy.
// Returns {median single-launch µs, back-to-back µs per launch}.
std::pair<double, double> time_launches(cudaStream_t stream, int iters, const std::function<void(int)>& launch) {
  cudaEvent_t a, b;
  BENCH_CHECK(cudaEventCreate(&a));
  BENCH_CHECK(cudaEventCreate(&b));
  int next = 0;
  for (int i = 0; i < 3; ++i) launch(next++);  // warm-up (cuBLASLt picks its algorithm here)
  BENCH_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> single;
  for (int i = 0; i < iters; ++i) {
    gpu_spin(stream, kSpinUs);
    BENCH_CHECK(cudaEventRecord(a, stream));
    launch(next++);
    BENCH_CHECK(cudaEventRecord(b, stream));
    BENCH_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CHECK(cudaEventElapsedTime(&ms, a, b));
    single.push_back(ms * 1e3);
  }
  gpu_spin(stream, kSpinUs * 4);
  BENCH_CHECK(cudaEventRecord(a, stream));
  for (int i = 0; i < iters; ++i) launch(next++);
  BENCH_CHECK(cudaEventRecord(b, stream));
  BENCH_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  BENCH_CHECK(cudaEventElapsedTime(&ms, a, b));
  BENCH_CHECK(cudaEventDestroy(a));
  BENCH_CHECK(cudaEventDestroy(b));
  return {median(single), ms * 1e3 / iters};
}

std::vector<float> download_half(const __half* dev, size_t n) {
  std::vector<__half> h(n);
  BENCH_CHECK(cudaMemcpy(h.data(), dev, n * sizeof(__half), cudaMemcpyDeviceToHost));
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = __half2float(h[i]);
  return out;
}

}  // namespace

// "1,2,4" -> {1, 2, 4}; stops at the first item that is not a positive number.
static std::vector<int64_t> parse_list(const char* c) {
  std::vector<int64_t> out;
  while (*c != '\0') {
    char* end = nullptr;
    const long v = std::strtol(c, &end, 10);
    if (end == c || v < 1) break;
    out.push_back(v);
    c = *end == ',' ? end + 1 : end;
  }
  return out;
}

int main(int argc, char** argv) {
  int iters = 50;
  std::vector<int64_t> extra_splits;  // --splits
  bool quick = false;
  std::string only_shape;  // --shape: one shape by its name, e.g. "L3-8B lm_head"
  std::vector<int64_t> ms = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--iters" && i + 1 < argc) iters = std::max(1, std::atoi(argv[++i]));
    else if (a == "--quick") quick = true;
    else if (a == "--shape" && i + 1 < argc) only_shape = argv[++i];
    else if (a == "--m" && i + 1 < argc) ms = parse_list(argv[++i]);
    else if (a == "--splits" && i + 1 < argc) extra_splits = parse_list(argv[++i]);
    else {
      fmt::print(stderr, "usage: bench_linear [--iters N] [--quick] [--shape NAME] [--m M1,M2,...] [--splits S1,...]\n");
      return 2;
    }
  }
  std::vector<Shape> shapes(kShapes.begin(), quick ? kShapes.begin() + 2 : kShapes.end());
  if (!only_shape.empty())
    std::erase_if(shapes, [&](const Shape& s) { return only_shape != s.name; });
  if (shapes.empty() || ms.empty()) {
    fmt::print(stderr, "bench_linear: no shape named '{}' or no M given\n", only_shape);
    return 2;
  }
  std::sort(ms.begin(), ms.end());
  const int64_t max_m = ms.back();

  cudaDeviceProp prop{};
  BENCH_CHECK(cudaGetDeviceProperties(&prop, 0));
  fmt::print("# linear layers at small M, fp16: fdpp GEMV (M <= {}) and flat GEMM (M <= {}) vs cuBLASLt, {} "
             "({} SMs, L2 {} MB)\n",
             fdpp::cuda::kGemvMaxM, fdpp::cuda::kFlatGemmMaxM, prop.name, prop.multiProcessorCount,
             prop.l2CacheSize >> 20);

  // One weight pool for every shape: >= kMinRotationBytes and >= 2 copies of the largest shape.
  size_t max_w = 0;
  int64_t max_n = 0, max_k = 0;
  for (const Shape& s : shapes) {
    max_w = std::max(max_w, static_cast<size_t>(s.N * s.K) * sizeof(__half));
    max_n = std::max(max_n, s.N);
    max_k = std::max(max_k, s.K);
  }
  const size_t pool_bytes = std::max(kMinRotationBytes + max_w, 2 * max_w);
  void* pool = nullptr;
  __half *x = nullptr, *out_fdpp = nullptr, *out_lt = nullptr;  // x [max_m, max_k]; outs [max_m, max_n]
  BENCH_CHECK(cudaMalloc(&pool, pool_bytes));
  BENCH_CHECK(cudaMalloc(&x, static_cast<size_t>(max_m * max_k) * sizeof(__half)));
  __half* gamma = nullptr;  // RMSNorm weight [max_k] for the norm-prologue timing
  BENCH_CHECK(cudaMalloc(&gamma, static_cast<size_t>(max_k) * sizeof(__half)));
  fill_random_half(gamma, static_cast<size_t>(max_k), 7u);
  BENCH_CHECK(cudaMalloc(&out_fdpp, static_cast<size_t>(max_m * max_n) * sizeof(__half)));
  BENCH_CHECK(cudaMalloc(&out_lt, static_cast<size_t>(max_m * max_n) * sizeof(__half)));
  __half* act = nullptr;  // silu(gate) * up [max_m, max_n / 2] of the gate/up shapes
  BENCH_CHECK(cudaMalloc(&act, static_cast<size_t>(max_m * (max_n / 2 + 1)) * sizeof(__half)));
  float* read_sink = nullptr;
  BENCH_CHECK(cudaMalloc(&read_sink, sizeof(float)));
  fill_random_half(pool, pool_bytes / sizeof(__half), 1234u);
  fill_random_half(x, static_cast<size_t>(max_m * max_k), 99u);
  BENCH_CHECK(cudaDeviceSynchronize());

  // The dispatcher's table (fdpp tune's file where one exists, else the built-in defaults) for the
  // "chosen" column.
  fdpp::LinearTable table;
  const auto table_path = fdpp::default_linear_table_path();
  if (std::filesystem::exists(table_path)) table = fdpp::LinearTable::load(table_path);
  fmt::print("# heuristic table: {}\n", std::filesystem::exists(table_path) ? table_path.string() : "built-in defaults");

  cudaStream_t stream;
  BENCH_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::vector<Row> rows;
  try {
    fdpp::cuda::CublasLtLinear lt(stream);
    for (const Shape& s : shapes) {
      const size_t w_bytes = static_cast<size_t>(s.N * s.K) * sizeof(__half);
      // Copies start 256-byte aligned (w_bytes is a multiple of 256 for these shapes).
      const int copies = static_cast<int>(std::max<size_t>(2, (kMinRotationBytes + w_bytes - 1) / w_bytes));
      auto weights = [&](int i) {
        return reinterpret_cast<__half*>(static_cast<char*>(pool) + static_cast<size_t>(i % copies) * w_bytes);
      };
      const auto [read_us, read_b2b_us] = time_launches(stream, iters, [&](int i) {
        BENCH_CHECK(stream_read(weights(i), w_bytes, read_sink, stream));
      });
      fmt::print("{:>14} [{:>6}, {:>5}] plain read of the weights {:7.1f} us ({:5.1f}%), b2b {:7.1f} us ({:5.1f}%)\n",
                 s.name, s.N, s.K, read_us, 100 * w_bytes / (read_us * 1e-6) / kCeiling, read_b2b_us,
                 100 * w_bytes / (read_b2b_us * 1e-6) / kCeiling);
      for (int64_t M : ms) {
        Row row;
        row.shape = s.name;
        row.N = s.N;
        row.K = s.K;
        row.M = M;
        row.read_us = read_us;
        row.read_b2b_us = read_b2b_us;
        row.chosen = fdpp::choose_linear_impl(table.find_or_default({prop.name, fdpp::DType::kF16, s.N, s.K}), M);
        const double bytes = static_cast<double>(s.N * s.K + M * s.K + M * s.N) * 2;

        fdpp::TensorView xv = fdpp::TensorView::contiguous(x, fdpp::DType::kF16, {M, s.K}, fdpp::Device::kCuda);
        fdpp::TensorView ov = fdpp::TensorView::contiguous(out_lt, fdpp::DType::kF16, {M, s.N}, fdpp::Device::kCuda);
        const fdpp::TensorView no_bias{};
        auto run_lt = [&](int i) {
          const fdpp::TensorView wv = fdpp::TensorView::contiguous(weights(i), fdpp::DType::kF16, {s.N, s.K},
                                                                   fdpp::Device::kCuda);
          lt.run(xv, wv, no_bias, ov);
        };
        std::tie(row.lt.us, row.lt.b2b_us) = time_launches(stream, iters, run_lt);
        row.lt.ran = true;
        run_lt(0);  // the reference output, on copy 0
        BENCH_CHECK(cudaStreamSynchronize(stream));
        const auto ref = download_half(out_lt, static_cast<size_t>(M * s.N));

        // Times one fdpp kernel (launch(i) runs it on weight copy i into out_fdpp) and checks it on copy 0.
        auto measure = [&](const char* name, const std::function<void(int)>& launch) {
          Timing t;
          t.ran = true;
          std::tie(t.us, t.b2b_us) = time_launches(stream, iters, launch);
          BENCH_CHECK(cudaMemsetAsync(out_fdpp, 0xff, static_cast<size_t>(M * s.N) * sizeof(__half), stream));
          launch(0);
          BENCH_CHECK(cudaStreamSynchronize(stream));
          const auto got = download_half(out_fdpp, static_cast<size_t>(M * s.N));
          double max_diff = 0, max_ref = 1e-30;
          for (size_t i = 0; i < got.size(); ++i) {
            max_diff = std::max(max_diff, std::abs(double(got[i]) - ref[i]));
            max_ref = std::max(max_ref, std::abs(double(ref[i])));
          }
          t.err = std::isfinite(max_diff) ? max_diff / max_ref : INFINITY;
          fmt::print("{:>14} [{:>6}, {:>5}] M={:<3} {:>9} {:7.1f} us ({:4.0f} GB/s, {:5.1f}%), b2b {:7.1f} us; "
                     "cuBLASLt {:7.1f} us: x{:.2f}; err {:.1e}{}\n",
                     s.name, s.N, s.K, M, name, t.us, bytes / t.us * 1e-3, 100 * bytes / (t.us * 1e-6) / kCeiling,
                     t.b2b_us, row.lt.us, row.lt.us / t.us, t.err, t.err > 1e-2 ? "  <-- MISMATCH" : "");
          return t;
        };
        auto fail = [](const char* what, const fdpp::Status& st) {
          fmt::print(stderr, "{}: {}\n", what, st.message());
          std::exit(1);
        };

        if (M <= fdpp::cuda::kGemvMaxM) {
          fdpp::cuda::GemvParams<__half> p;
          p.x = x;
          p.out = out_fdpp;
          p.M = M;
          p.N = s.N;
          p.K = s.K;
          row.gemv = measure("gemv", [&](int i) {
            p.w = weights(i);
            if (const fdpp::Status st = fdpp::cuda::launch_gemv(p, stream); !st.is_ok()) fail("gemv", st);
          });
        }
        if (M <= fdpp::cuda::kFlatGemmMaxM) {
          fdpp::cuda::FlatGemmParams<__half> p;
          p.x = x;
          p.w = weights(0);
          p.out = out_fdpp;
          p.M = M;
          p.N = s.N;
          p.K = s.K;
          fdpp::cuda::FlatGemmPlan plan;
          if (const fdpp::Status st = fdpp::cuda::plan_flat_gemm(p, &plan); !st.is_ok()) fail("flat_gemm plan", st);
          row.splits = plan.splits;
          // One flat GEMM with p as it stands (mainloop, splits, norm) on weight copy i.
          auto run_flat = [&](int i) {
            p.w = weights(i);
            if (const fdpp::Status st = fdpp::cuda::launch_flat_gemm(p, stream); !st.is_ok()) fail("flat_gemm", st);
          };
          const char* flat_name = !plan.streamed ? "flat pipe" : plan.weight_buffers == 3 ? "flat deep" : "flat strm";
          row.flat = measure(flat_name, run_flat);
          if (plan.streamed && plan.splits == 1) {  // the other weight-buffer count (log line)
            p.weight_buffers = plan.weight_buffers == 3 ? 2 : 3;
            measure(p.weight_buffers == 3 ? "flat deep" : "flat strm", run_flat);
            p.weight_buffers = 0;
          }
          if (plan.streamed) {  // with the RMSNorm prologue (timed only: its output is not cuBLASLt's)
            p.norm_weight = gamma;
            p.norm_eps = 1e-5f;
            row.flat_norm_us = time_launches(stream, iters, run_flat).first;
            p.norm_scale_only = true;
            row.flat_scale_us = time_launches(stream, iters, run_flat).first;
            p.norm_scale_only = false;
            p.norm_weight = nullptr;
          }
          if (plan.streamed && plan.k_tiles >= 2) {  // the other split-K choice, same mainloop
            row.alt_splits = plan.splits == 1 ? 2 : 1;
            p.splits = row.alt_splits;
            const std::string name = fmt::format("flat s{}", row.alt_splits);
            row.flat_alt = measure(name.c_str(), run_flat);
            for (int64_t forced : extra_splits) {  // --splits: log lines only
              if (forced == plan.splits || forced == row.alt_splits || forced > plan.k_tiles ||
                  forced > fdpp::cuda::kFlatGemmMaxSplits)
                continue;
              p.splits = static_cast<int>(forced);
              const std::string forced_name = fmt::format("flat s{}", forced);
              measure(forced_name.c_str(), run_flat);
            }
            p.splits = 0;
          }
          if (plan.streamed) {  // the other mainloop at the same M, for the comparison
            p.mainloop = fdpp::cuda::FlatGemmMainloop::kPipelined;
            row.flat_pipelined = measure("flat pipe", run_flat);
          }
        }
        // The gate/up shapes: the gated epilogue against kernel + interleaved silu_mul (log lines).
        if (std::string(s.name).find("gate+up") != std::string::npos && s.N % 2 == 0) {
          // scaled: the deferred norm's row scale (of x's rows) applied by the silu_mul.
          auto silu_after = [&](const __half* products, bool scaled = false) {
            fdpp::cuda::SiluMulParams<__half> sp{products, act, M, s.N / 2, true, {}};
            if (scaled) sp.scale = {x, s.K, 1e-5f};
            if (const fdpp::Status st = fdpp::cuda::launch_silu_mul(sp, stream); !st.is_ok()) fail("silu_mul", st);
          };
          auto report = [&](const char* name, const std::function<void(int)>& launch) {
            const auto [us, b2b_us] = time_launches(stream, iters, launch);
            fmt::print("{:>14} [{:>6}, {:>5}] M={:<3} {:>15} {:7.1f} us, b2b {:7.1f} us\n", s.name, s.N, s.K, M, name, us,
                       b2b_us);
          };
          report("cuBLASLt+silu", [&](int i) {
            run_lt(i);
            silu_after(out_lt);
          });
          report("cuBLASLt+scaled", [&](int i) {  // the deferred norm (CudaBackend::gate_up_silu)
            run_lt(i);
            silu_after(out_lt, true);
          });
          // One kernel (Params P, launcher launch_kernel) plain + silu_mul, then with its gated epilogue.
          auto compare = [&](auto p, const char* plain_name, const char* gated_name, auto launch_kernel) {
            p.x = x;
            p.M = M;
            p.N = s.N;
            p.K = s.K;
            auto run = [&](int i, bool gated) {
              p.w = weights(i);
              p.gated_silu = gated;
              p.out = gated ? act : out_fdpp;
              if (const fdpp::Status st = launch_kernel(p, stream); !st.is_ok()) fail(gated_name, st);
              if (!gated) silu_after(out_fdpp);
            };
            report(plain_name, [&](int i) { run(i, false); });
            report(gated_name, [&](int i) { run(i, true); });
            return p;
          };
          if (M <= fdpp::cuda::kGemvMaxM)
            compare(fdpp::cuda::GemvParams<__half>{}, "gemv+silu", "gemv gated",
                    [](const auto& p, cudaStream_t st) { return fdpp::cuda::launch_gemv(p, st); });
          if (M <= fdpp::cuda::kFlatGemmStreamedMaxM) {
            auto p = compare(fdpp::cuda::FlatGemmParams<__half>{}, "flat+silu", "flat gated",
                             [](const auto& q, cudaStream_t st) { return fdpp::cuda::launch_flat_gemm(q, st); });
            // The gated kernel with a folded norm (the scale-only variant), as batch 9-16 runs it.
            p.gated_silu = true;
            p.out = act;
            p.norm_weight = gamma;
            p.norm_eps = 1e-5f;
            p.norm_scale_only = true;
            report("flat gated+scale", [&](int i) {
              p.w = weights(i);
              if (const fdpp::Status st = fdpp::cuda::launch_flat_gemm(p, stream); !st.is_ok())
                fail("flat gated+scale", st);
            });
          }
        }
        if (!row.gemv.ran && !row.flat.ran)
          fmt::print("{:>14} [{:>6}, {:>5}] M={:<3}  cuBLASLt {:7.1f} us ({:4.0f} GB/s, {:5.1f}%), b2b {:7.1f} us\n",
                     s.name, s.N, s.K, M, row.lt.us, bytes / row.lt.us * 1e-3,
                     100 * bytes / (row.lt.us * 1e-6) / kCeiling, row.lt.b2b_us);
        rows.push_back(row);
      }
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }

  // Markdown table for docs/PERF.md; "-" where a kernel does not serve that M.
  auto cell = [](bool ran, double v, const char* format) { return ran ? fmt::format(fmt::runtime(format), v) : std::string("-"); };
  fmt::print("\n| shape | N | K | M | GEMV µs | GEMV % | flat µs | flat % | flat TFLOP/s | flat b2b % | mainloop | splits | "
             "alt splits: µs, b2b % | pipelined µs | flat+norm µs | flat+scale µs | cuBLASLt µs | cuBLASLt % | best fdpp vs cuBLASLt | "
             "chosen | chosen vs best | chosen vs best b2b | read %, b2b % | max err |\n");
  fmt::print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | "
             "---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    const double bytes = static_cast<double>(r.N * r.K + r.M * r.K + r.M * r.N) * 2;
    const double flops = 2.0 * static_cast<double>(r.M * r.N * r.K);
    auto pct = [&](double us) { return 100 * bytes / (us * 1e-6) / kCeiling; };
    // The flat GEMM's time is the faster mainloop's where both ran (the kernel's own choice is "mainloop").
    const double flat_us = r.flat_pipelined.ran ? std::min(r.flat.us, r.flat_pipelined.us) : r.flat.us;
    double fdpp_best = 1e30;
    if (r.gemv.ran) fdpp_best = std::min(fdpp_best, r.gemv.us);
    if (r.flat.ran) fdpp_best = std::min(fdpp_best, r.flat.us);
    const double best = std::min(fdpp_best, r.lt.us);
    const double chosen_us = r.chosen == fdpp::LinearImpl::kGemv && r.gemv.ran       ? r.gemv.us
                             : r.chosen == fdpp::LinearImpl::kFlatGemm && r.flat.ran ? r.flat.us
                                                                                     : r.lt.us;
    // The same over back-to-back times (each kernel queued 'iters' times behind itself).
    const auto chosen_vs_best_b2b = [&] {
      double best_b2b = r.lt.b2b_us;
      if (r.gemv.ran) best_b2b = std::min(best_b2b, r.gemv.b2b_us);
      if (r.flat.ran) best_b2b = std::min(best_b2b, r.flat.b2b_us);
      const double chosen_b2b = r.chosen == fdpp::LinearImpl::kGemv && r.gemv.ran       ? r.gemv.b2b_us
                                : r.chosen == fdpp::LinearImpl::kFlatGemm && r.flat.ran ? r.flat.b2b_us
                                                                                        : r.lt.b2b_us;
      return chosen_b2b / best_b2b;
    }();
    const double err = std::max({r.gemv.ran ? r.gemv.err : 0.0, r.flat.ran ? r.flat.err : 0.0,
                                 r.flat_alt.ran ? r.flat_alt.err : 0.0});
    const double w_bytes = static_cast<double>(r.N * r.K) * 2;
    const std::string alt = r.flat_alt.ran ? fmt::format("s{}: {:.1f}, {:.1f}%", r.alt_splits, r.flat_alt.us,
                                                         pct(r.flat_alt.b2b_us))
                                           : std::string("-");
    const std::string read = fmt::format("{:.1f}%, {:.1f}%", 100 * w_bytes / (r.read_us * 1e-6) / kCeiling,
                                         100 * w_bytes / (r.read_b2b_us * 1e-6) / kCeiling);
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1f} | {:.1f}% | {} | {} | {:.2f} | {:.2f} | {} | {} |\n",
               r.shape, r.N, r.K, r.M, cell(r.gemv.ran, r.gemv.us, "{:.1f}"), cell(r.gemv.ran, pct(r.gemv.us), "{:.1f}%"),
               cell(r.flat.ran, r.flat.us, "{:.1f}"), cell(r.flat.ran, pct(r.flat.us), "{:.1f}%"),
               cell(r.flat.ran, flops / (r.flat.us * 1e-6) * 1e-12, "{:.2f}"),
               cell(r.flat.ran, pct(r.flat.b2b_us), "{:.1f}%"),
               r.flat.ran ? (r.flat_pipelined.ran ? "streamed" : "pipelined") : "-",
               r.flat.ran ? std::to_string(r.splits) : std::string("-"), alt,
               cell(r.flat.ran, r.flat_pipelined.ran ? r.flat_pipelined.us : flat_us, "{:.1f}"),
               cell(r.flat_norm_us > 0, r.flat_norm_us, "{:.1f}"), cell(r.flat_scale_us > 0, r.flat_scale_us, "{:.1f}"),
               r.lt.us, pct(r.lt.us),
               cell(fdpp_best < 1e30, r.lt.us / fdpp_best, "{:.2f}x"), fdpp::linear_impl_name(r.chosen), chosen_us / best,
               chosen_vs_best_b2b, read, cell(r.gemv.ran || r.flat.ran, err, "{:.1e}"));
  }
  cudaFree(pool);
  cudaFree(x);
  cudaFree(gamma);
  cudaFree(out_fdpp);
  cudaFree(out_lt);
  cudaFree(act);
  cudaFree(read_sink);
  cudaStreamDestroy(stream);
  return 0;
}

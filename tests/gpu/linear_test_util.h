// Shared harness of the linear-kernel tests (GEMV, flat GEMM): one run of out [M, N] = x [M, K] .
// w [N, K]^T with a chosen epilogue against cpu::linear on fresh inputs rounded to the device
// dtype, outputs poisoned (NaN) before the run. The kernels' Params share their fields (x, w, bias,
// residual, out / out_f32, M, N, K), so one setup serves both.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_ops.h"
#include "gpu/gpu_test_util.h"

namespace fdpp::test {

template <typename T>
double linear_tol() { return dtype_of<T>() == DType::kF16 ? 2e-3 : 1.6e-2; }

// fp32 output: only the summation order differs from the reference.
constexpr double kLinearTolF32 = 1e-4;

enum class Epilogue { kNone, kBias, kResidual, kResidualInPlace, kF32Out, kCount };

inline const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::kNone: return "plain";
    case Epilogue::kBias: return "+bias";
    case Epilogue::kResidual: return "+bias +residual";
    case Epilogue::kResidualInPlace: return "+residual in place";
    case Epilogue::kF32Out: return "+bias fp32 out";
    default: return "?";
  }
}

// Device fp32 buffer [n] for the fp32-output variant.
struct DeviceFloats {
  float* dev = nullptr;
  size_t n;
  explicit DeviceFloats(size_t n_) : n(n_) { EXPECT_EQ(cudaMalloc(&dev, std::max<size_t>(n, 1) * 4), cudaSuccess); }
  ~DeviceFloats() { cudaFree(dev); }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  void poison() { EXPECT_EQ(cudaMemset(dev, 0xff, n * 4), cudaSuccess); }
  std::vector<float> download() const {
    std::vector<float> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), dev, n * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
};

// One run of a linear kernel with Params P on a fresh x [M, K]: w_host / bias hold the reference
// values, w_dev the weights the kernel reads. launch(p) enqueues the kernel and returns its Status;
// it may set *trace to what the failure messages should name (a plan, a variant).
template <typename T, typename P>
void check_linear_run(const DeviceArray<T>& w_host, const T* w_dev, const DeviceArray<T>& bias, int64_t M, int64_t N,
                      int64_t K, Epilogue epi, std::mt19937& rng, const std::string& what,
                      const std::function<Status(const P&, std::string*)>& launch) {
  DeviceArray<T> x(static_cast<size_t>(M * K)), res(static_cast<size_t>(M * N)), out(res.size());
  x.fill_normal(rng, 1.0f);
  res.fill_normal(rng, 2.0f);
  DeviceFloats out_f32(res.size());
  out.poison();
  out_f32.poison();

  const bool with_bias = epi == Epilogue::kBias || epi == Epilogue::kResidual || epi == Epilogue::kF32Out;
  const bool with_res = epi == Epilogue::kResidual || epi == Epilogue::kResidualInPlace;
  P p;
  p.x = x.dev;
  p.w = w_dev;
  p.bias = with_bias ? bias.dev : nullptr;
  p.M = M;
  p.N = N;
  p.K = K;
  if (epi == Epilogue::kF32Out) {
    p.out_f32 = out_f32.dev;
  } else if (epi == Epilogue::kResidualInPlace) {
    p.residual = res.dev;  // out aliases residual: its old contents are the residual, not poison
    p.out = res.dev;
  } else {
    p.residual = with_res ? res.dev : nullptr;
    p.out = out.dev;
  }
  std::string detail;
  const Status st = launch(p, &detail);
  SCOPED_TRACE(what + " M=" + std::to_string(M) + " " + epilogue_name(epi) + detail);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<float> ref(static_cast<size_t>(M * N));
  const TensorView wv = TensorView::contiguous(const_cast<float*>(w_host.host.data()), DType::kF32, {N, K});
  const TensorView bv =
      with_bias ? TensorView::contiguous(const_cast<float*>(bias.host.data()), DType::kF32, {N}) : TensorView{};
  cpu::linear(x.host.data(), M, wv, bv, ref.data());
  std::vector<double> want(ref.begin(), ref.end());
  if (with_res)
    for (size_t i = 0; i < want.size(); ++i) want[i] += res.host[i];

  const std::vector<float> got =
      epi == Epilogue::kF32Out ? out_f32.download() : epi == Epilogue::kResidualInPlace ? res.download() : out.download();
  const auto unwritten = std::count_if(got.begin(), got.end(), [](float g) { return std::isnan(g); });
  ASSERT_EQ(unwritten, 0) << "outputs left poisoned";
  EXPECT_LT(scaled_max_error(got, want), epi == Epilogue::kF32Out ? kLinearTolF32 : linear_tol<T>());
}

// Operands of one run with an optional RMSNorm before the product: w [N, K], bias [N], x [M, K],
// norm weight g [K] filled in that order (fresh, rounded to T), outputs [M, N] poisoned; params()
// points a kernel's Params at them, reference() is (x or rmsnorm(x) * g) . w^T (+ bias) in fp32.
template <typename T>
struct NormedLinearOperands {
  int64_t M, N, K;
  DeviceArray<T> w, bias, x, g, out;
  DeviceFloats out_f32;
  NormedLinearOperands(int64_t M_, int64_t N_, int64_t K_, float x_stddev, float x_mean, std::mt19937& rng)
      : M(M_), N(N_), K(K_), w(static_cast<size_t>(N * K)), bias(static_cast<size_t>(N)),
        x(static_cast<size_t>(M * K)), g(static_cast<size_t>(K)), out(static_cast<size_t>(M * N)),
        out_f32(out.size()) {
    w.fill_normal(rng, 1.0f / std::sqrt(static_cast<float>(K)));
    bias.fill_normal(rng, 0.5f);
    x.fill_normal(rng, x_stddev, x_mean);
    g.fill_normal(rng, 0.2f, 1.0f);
    out.poison();
    out_f32.poison();
  }
  template <typename P>
  P params(bool with_bias, bool norm, bool f32_out) const {
    P p;
    p.x = x.dev;
    p.w = w.dev;
    p.bias = with_bias ? bias.dev : nullptr;
    p.M = M;
    p.N = N;
    p.K = K;
    if (norm) {
      p.norm_weight = g.dev;
      p.norm_eps = 1e-5f;
    }
    if (f32_out) p.out_f32 = out_f32.dev;
    else p.out = out.dev;
    return p;
  }
  std::vector<float> reference(bool with_bias, bool norm) {
    std::vector<float> input(x.host), ref(out.size());
    if (norm) cpu::rmsnorm(x.host.data(), TensorView::contiguous(g.host.data(), DType::kF32, {K}), 1e-5f, M, input.data());
    cpu::linear(input.data(), M, TensorView::contiguous(w.host.data(), DType::kF32, {N, K}),
                with_bias ? TensorView::contiguous(bias.host.data(), DType::kF32, {N}) : TensorView{}, ref.data());
    return ref;
  }
  std::vector<float> download(bool f32_out) const { return f32_out ? out_f32.download() : out.download(); }
};

// The RMSNorm prologue: out = (rmsnorm(x) * g) . w^T + bias, against cpu::rmsnorm then
// cpu::linear in fp32. x has a nonzero mean and spread so that 1/rms is far from 1. launch(p)
// enqueues the kernel (p.norm_weight and p.norm_eps set) and returns its Status.
// rounded_input: the kernel rounds x * g to T before multiplying (tensor-core operands, like the
// unfused path's normalised x), so even fp32 outputs carry T's input rounding.
template <typename T, typename P>
void check_norm_prologue_run(int64_t N, int64_t K, int64_t M, bool f32_out, bool rounded_input, std::mt19937& rng,
                             const std::function<Status(const P&)>& launch) {
  SCOPED_TRACE("norm prologue [" + std::to_string(N) + ", " + std::to_string(K) + "] M=" + std::to_string(M) +
               (f32_out ? " fp32 out" : ""));
  NormedLinearOperands<T> ops(M, N, K, 3.0f, 0.5f, rng);
  const Status st = launch(ops.template params<P>(true, true, f32_out));
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const std::vector<float> ref = ops.reference(true, true);
  const std::vector<float> got = ops.download(f32_out);
  ASSERT_EQ(std::count_if(got.begin(), got.end(), [](float v) { return std::isnan(v); }), 0) << "outputs left poisoned";
  EXPECT_LT(scaled_max_error(got, std::vector<double>(ref.begin(), ref.end())),
            f32_out && !rounded_input ? 2 * kLinearTolF32 : linear_tol<T>());
}

// silu(gate) * up [M, N / 2] in fp64 of interleaved gate/up products [M, N] (column 2j gate j,
// 2j + 1 up j): the reference of the gated SiLU epilogue.
inline std::vector<double> gated_silu_reference(const std::vector<float>& products, int64_t M, int64_t N) {
  const int64_t F = N / 2;
  std::vector<double> want(static_cast<size_t>(M * F));
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < F; ++j) {
      const double gate = products[static_cast<size_t>(m * N + 2 * j)];
      const double up = products[static_cast<size_t>(m * N + 2 * j + 1)];
      want[static_cast<size_t>(m * F + j)] = gate / (1.0 + std::exp(-gate)) * up;
    }
  return want;
}

// The gated SiLU epilogue: w [N, K] is a fused gate/up matrix with interleaved rows (2j gate, 2j + 1
// up) and out [M, N / 2] = silu(gate) * up of (x or rmsnorm(x) * g) . w^T (+ bias), against cpu::
// rmsnorm, cpu::linear and the silu in fp64. launch(p) enqueues the kernel (p.gated_silu set; the
// norm fields when `norm`) and returns its Status. The output is poisoned first, and the half of
// a full [M, N] buffer past [M, N / 2] must stay poisoned (the epilogue writes only N / 2 columns).
template <typename T, typename P>
void check_gated_silu_run(int64_t N, int64_t K, int64_t M, bool norm, bool with_bias, bool f32_out, std::mt19937& rng,
                          const std::function<Status(const P&)>& launch) {
  SCOPED_TRACE("gated silu [" + std::to_string(N) + ", " + std::to_string(K) + "] M=" + std::to_string(M) +
               (norm ? " norm" : "") + (with_bias ? " bias" : "") + (f32_out ? " fp32 out" : ""));
  NormedLinearOperands<T> ops(M, N, K, 1.0f, 0.3f, rng);
  P p = ops.template params<P>(with_bias, norm, f32_out);
  p.gated_silu = true;
  const Status st = launch(p);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  const int64_t F = N / 2;
  const std::vector<double> want = gated_silu_reference(ops.reference(with_bias, norm), M, N);
  std::vector<float> got = ops.download(f32_out);
  const auto beyond = std::count_if(got.begin() + M * F, got.end(), [](float v) { return !std::isnan(v); });
  EXPECT_EQ(beyond, 0) << "the epilogue wrote past [M, N / 2]";
  got.resize(static_cast<size_t>(M * F));
  ASSERT_EQ(std::count_if(got.begin(), got.end(), [](float v) { return std::isnan(v); }), 0) << "outputs left poisoned";
  // The kernels round the normalised input to T (like the unfused path); the silu of a product
  // carries the product's error, so the linear tolerance holds.
  EXPECT_LT(scaled_max_error(got, want), f32_out && !norm ? 2 * kLinearTolF32 : linear_tol<T>());
}

}  // namespace fdpp::test

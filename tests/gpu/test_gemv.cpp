// The CUDA-core GEMV (backend/cuda/gemm/gemv.cuh) against the CPU reference cpu::linear on fresh
// random inputs rounded to the device dtype, fp16 and bf16, M in {1, 2, 3, 7, 8}: Llama-2-7B
// shapes, odd N, K % 8 != 0 (the scalar path), unaligned pointers, every epilogue (bias,
// residual, in-place residual, fp32 output). Outputs are poisoned (NaN) before every run.
#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/gemm/gemv.cuh"
#include "gpu/gpu_test_util.h"

namespace fdpp {
namespace {

template <typename T>
double tol() { return test::dtype_of<T>() == DType::kF16 ? 2e-3 : 1.6e-2; }

// fp32 output: only the summation order differs from the reference.
constexpr double kTolF32 = 1e-4;

enum class Epilogue { kNone, kBias, kResidual, kResidualInPlace, kF32Out, kCount };

const char* epilogue_name(Epilogue e) {
  switch (e) {
    case Epilogue::kNone: return "plain";
    case Epilogue::kBias: return "+bias";
    case Epilogue::kResidual: return "+bias +residual";
    case Epilogue::kResidualInPlace: return "+residual in place";
    case Epilogue::kF32Out: return "+bias fp32 out";
    default: return "?";
  }
}

// Device fp32 buffer for the fp32-output variant.
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

// One GEMV of x [M, K] (fresh) with the given weights against cpu::linear.
// w_dev points at the weights on the device (w.host holds the same values).
template <typename T>
void check_one(const test::DeviceArray<T>& w, const T* w_dev, const test::DeviceArray<T>& bias, int64_t M,
               int64_t N, int64_t K, Epilogue epi, std::mt19937& rng, const std::string& what) {
  SCOPED_TRACE(what + " M=" + std::to_string(M) + " " + epilogue_name(epi));
  test::DeviceArray<T> x(static_cast<size_t>(M * K)), res(static_cast<size_t>(M * N)), out(res.size());
  x.fill_normal(rng, 1.0f);
  res.fill_normal(rng, 2.0f);
  DeviceFloats out_f32(res.size());
  out.poison();
  out_f32.poison();

  const bool with_bias = epi == Epilogue::kBias || epi == Epilogue::kResidual || epi == Epilogue::kF32Out;
  const bool with_res = epi == Epilogue::kResidual || epi == Epilogue::kResidualInPlace;
  cuda::GemvParams<T> p;
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
  const Status st = cuda::launch_gemv(p, nullptr);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  std::vector<float> ref(static_cast<size_t>(M * N));
  const TensorView wv = TensorView::contiguous(const_cast<float*>(w.host.data()), DType::kF32, {N, K});
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
  EXPECT_LT(test::scaled_max_error(got, want), epi == Epilogue::kF32Out ? kTolF32 : tol<T>());
}

// Every M of the test on one [N, K]; the epilogue rotates with M so each shape sees each one.
template <typename T>
void check_shape(int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  test::DeviceArray<T> w(static_cast<size_t>(N * K)), bias(static_cast<size_t>(N));
  w.fill_normal(rng, 1.0f / std::sqrt(static_cast<float>(K)));
  bias.fill_normal(rng, 0.5f);
  const std::string what = std::string(test::dtype_of<T>() == DType::kF16 ? "f16" : "bf16") + " [" +
                           std::to_string(N) + ", " + std::to_string(K) + "]";
  int i = static_cast<int>(seed);
  for (int64_t M : {1, 2, 3, 7, 8}) {
    const auto epi = static_cast<Epilogue>(i++ % static_cast<int>(Epilogue::kCount));
    check_one<T>(w, w.dev, bias, M, N, K, epi, rng, what);
  }
}

const std::vector<std::pair<int64_t, int64_t>> kShapes = {
    {4096, 4096}, {12288, 4096}, {4096, 11008},  // Llama-2-7B QKV, O, FFN2
    {1000, 4104}, {17, 40},                       // odd N, K not a multiple of the block's 1024
    {33, 4099},   {5, 3},                         // K % 8 != 0: the scalar path
};

TEST(GpuGemv, MatchesCpuFp16) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 1;
  for (auto [n, k] : kShapes) check_shape<__half>(n, k, seed++);
}

TEST(GpuGemv, MatchesCpuBf16) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 100;
  for (auto [n, k] : kShapes) check_shape<__nv_bfloat16>(n, k, seed++);
}

// w one element past a 16-byte boundary: K % 8 == 0 but rows are unaligned -> the scalar path.
TEST(GpuGemv, UnalignedWeightsTakeTheScalarPath) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(7);
  const int64_t N = 257, K = 1024;
  test::DeviceArray<__half> w(static_cast<size_t>(N * K)), bias(static_cast<size_t>(N));
  w.fill_normal(rng, 1.0f / 32);
  bias.fill_normal(rng, 0.5f);
  __half* shifted = nullptr;
  ASSERT_EQ(cudaMalloc(&shifted, (w.size() + 1) * sizeof(__half)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(shifted + 1, w.dev, w.size() * sizeof(__half), cudaMemcpyDeviceToDevice), cudaSuccess);
  for (int64_t M : {1, 4, 8}) check_one<__half>(w, shifted + 1, bias, M, N, K, Epilogue::kResidual, rng, "unaligned w");
  cudaFree(shifted);
}

TEST(GpuGemv, RejectsBadArguments) {
  FDPP_REQUIRE_GPU();
  test::DeviceArray<__half> x(9 * 64), w(16 * 64), out(9 * 16);
  cuda::GemvParams<__half> p;
  p.x = x.dev;
  p.w = w.dev;
  p.out = out.dev;
  p.N = 16;
  p.K = 64;
  p.M = 9;  // M > 8: the flat GEMM's job
  Status st = cuda::launch_gemv(p, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.message();

  p.M = 2;
  float* f32 = reinterpret_cast<float*>(out.dev);
  p.out_f32 = f32;  // both outputs
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.out = nullptr;
  p.out_f32 = nullptr;  // neither
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kInvalidArgument);

  p.out = x.dev + 8;  // overlaps x
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kInvalidArgument);

  p.out = out.dev;
  p.M = 0;  // nothing to do
  EXPECT_TRUE(cuda::launch_gemv(p, nullptr).is_ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace fdpp

// The CUDA-core GEMV (backend/cuda/gemm/gemv.cuh) against the CPU reference cpu::linear on fresh
// random inputs rounded to the device dtype, fp16 and bf16, M in {1, 2, 3, 7, 8}: Llama-2-7B
// shapes, odd N, K % 8 != 0 (the scalar path), unaligned pointers, every epilogue (bias,
// residual, in-place residual, fp32 output) and the RMSNorm prologue. Outputs are poisoned (NaN)
// before every run.
#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cuda/gemm/gemv.cuh"
#include "gpu/linear_test_util.h"

namespace fdpp {
namespace {

using test::Epilogue;

// One GEMV of x [M, K] (fresh) with the given weights against cpu::linear.
// w_dev points at the weights on the device (w.host holds the same values).
template <typename T>
void check_one(const test::DeviceArray<T>& w, const T* w_dev, const test::DeviceArray<T>& bias, int64_t M,
               int64_t N, int64_t K, Epilogue epi, std::mt19937& rng, const std::string& what) {
  test::check_linear_run<T, cuda::GemvParams<T>>(
      w, w_dev, bias, M, N, K, epi, rng, what,
      [](const cuda::GemvParams<T>& p, std::string*) { return cuda::launch_gemv(p, nullptr); });
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

// The RMSNorm prologue against cpu::rmsnorm then cpu::linear (linear_test_util.h).
template <typename T>
void check_norm_prologue(int64_t N, int64_t K, int64_t M, bool f32_out, std::mt19937& rng) {
  test::check_norm_prologue_run<T, cuda::GemvParams<T>>(N, K, M, f32_out, false, rng, [](const cuda::GemvParams<T>& p) {
    EXPECT_TRUE(cuda::gemv_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight));
    return cuda::launch_gemv(p, nullptr);
  });
}

TEST(GpuGemv, NormPrologueMatchesCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(11);
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{12288, 4096}, {4096, 4096}, {1000, 4104}, {17, 40}})
    for (int64_t M = 1; M <= cuda::kGemvNormMaxM; ++M) {
      check_norm_prologue<__half>(n, k, M, M == 1, rng);
      check_norm_prologue<__nv_bfloat16>(n, k, M, M == 2, rng);
    }
}

// The gated SiLU epilogue (interleaved gate/up rows) against the CPU: every M, with and without
// the norm prologue, bias, fp32 output, both dtypes, the fast and the scalar path.
TEST(GpuGemv, GatedSiluEpilogueMatchesCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(12);
  int i = 0;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{22016, 4096}, {1002, 4104}, {18, 40}, {34, 4099}})
    for (int64_t M = 1; M <= cuda::kGemvMaxM; ++M, ++i) {
      const bool norm = M <= cuda::kGemvNormMaxM && k % 8 == 0 && i % 2 == 0;
      auto launch = [](const auto& p) { return cuda::launch_gemv(p, nullptr); };
      test::check_gated_silu_run<__half, cuda::GemvParams<__half>>(n, k, M, norm, i % 3 == 0, i % 5 == 0, rng, launch);
      test::check_gated_silu_run<__nv_bfloat16, cuda::GemvParams<__nv_bfloat16>>(n, k, M, norm, i % 3 == 1, i % 5 == 1,
                                                                                rng, launch);
    }
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

  // The norm prologue where it has no variant: kUnsupported, which the dispatcher avoids by asking
  // gemv_can_fuse_norm first.
  test::DeviceArray<__half> g(64);
  p.norm_weight = g.dev;
  p.M = cuda::kGemvNormMaxM + 1;  // more sums of squares than the variants hold
  EXPECT_FALSE(cuda::gemv_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight));
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kUnsupported);
  p.M = 1;
  p.K = 60;  // K % 8 != 0: the scalar path has no norm variant
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kUnsupported);

  // The gated epilogue pairs rows: an odd N, or a residual beside it, is refused.
  p.norm_weight = nullptr;
  p.K = 64;
  p.gated_silu = true;
  p.N = 15;
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kUnsupported);
  p.N = 16;
  p.residual = out.dev;
  EXPECT_EQ(cuda::launch_gemv(p, nullptr).code(), ErrorCode::kUnsupported);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace fdpp

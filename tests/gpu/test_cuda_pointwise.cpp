// Pointwise GPU kernels against the CPU reference ops on fresh random inputs, fp16 and bf16.
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "gpu/gpu_test_util.h"

namespace fdpp {
namespace {

template <typename T>
double tol() { return test::dtype_of<T>() == DType::kF16 ? 2e-3 : 1.6e-2; }

template <typename T>
void check_rmsnorm(int64_t rows, int64_t dim, bool with_residual, uint32_t seed) {
  std::mt19937 rng(seed);
  test::DeviceArray<T> x(static_cast<size_t>(rows * dim)), res(x.size()), w(static_cast<size_t>(dim)), out(x.size());
  x.fill_normal(rng, 2.0f);
  res.fill_normal(rng, 1.0f);
  w.fill_normal(rng, 0.1f, 1.0f);
  out.poison();
  cuda::RmsNormParams<T> p{x.dev, with_residual ? res.dev : nullptr, w.dev, out.dev, rows, dim, 1e-5f};
  ASSERT_TRUE(cuda::launch_rmsnorm(p, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> xin = x.host;
  if (with_residual)  // the kernel rounds x + residual to T, as an unfused add would
    for (size_t i = 0; i < xin.size(); ++i) xin[i] = test::from_device_type(test::to_device_type<T>(xin[i] + res.host[i]));
  std::vector<float> want(xin.size());
  cpu::rmsnorm(xin.data(), TensorView::contiguous(w.host.data(), DType::kF32, {dim}), 1e-5f, rows, want.data());
  EXPECT_LT(test::scaled_max_error(out.download(), std::vector<double>(want.begin(), want.end())), tol<T>())
      << rows << "x" << dim << (with_residual ? " +residual" : "");
  if (with_residual) {
    EXPECT_LT(test::scaled_max_error(x.download(), std::vector<double>(xin.begin(), xin.end())), 1e-6);
  }
}

TEST(GpuPointwise, RmsNormMatchesCpu) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 1;
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{1, 64}, {7, 4096}, {64, 5120}, {3, 333}}) {
    for (bool residual : {false, true}) {
      check_rmsnorm<__half>(rows, dim, residual, seed++);
      check_rmsnorm<__nv_bfloat16>(rows, dim, residual, seed++);
    }
  }
}

template <typename T>
void check_rope(int64_t tokens, int64_t heads, int64_t hd, uint32_t seed) {
  std::mt19937 rng(seed);
  test::DeviceArray<T> x(static_cast<size_t>(tokens * heads * hd));
  x.fill_normal(rng, 1.0f);
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (auto& p : pos) p = static_cast<int32_t>(rng() % 32768);
  std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) inv_freq[static_cast<size_t>(i)] = std::pow(10000.0f, -2.0f * i / hd);
  test::DeviceInts d_pos(pos);
  float* d_freq = nullptr;
  cudaMalloc(&d_freq, inv_freq.size() * 4);
  cudaMemcpy(d_freq, inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice);
  ASSERT_TRUE(cuda::launch_rope(cuda::RopeParams<T>{x.dev, d_pos.dev, d_freq, tokens, heads, hd}, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(d_freq);
  std::vector<float> want = x.host;
  cpu::rope_rotate_half(want.data(), tokens, heads, hd, pos, inv_freq);
  // Angles up to 32768 rad: fp32 sincos differs between implementations by ~1e-3 there.
  EXPECT_LT(test::scaled_max_error(x.download(), std::vector<double>(want.begin(), want.end())), tol<T>() + 2e-3);
}

TEST(GpuPointwise, RopeMatchesCpu) {
  FDPP_REQUIRE_GPU();
  check_rope<__half>(5, 32, 128, 1);
  check_rope<__nv_bfloat16>(64, 8, 64, 2);
  check_rope<__half>(3, 8, 8, 3);
}

TEST(GpuPointwise, SiluMulAndAddMatchCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(5);
  const size_t n = 3 * 11008 + 5;
  test::DeviceArray<__half> gate(n), up(n), out(n);
  gate.fill_normal(rng, 3.0f);
  up.fill_normal(rng, 1.0f);
  out.poison();
  ASSERT_TRUE(cuda::launch_silu_mul(cuda::SiluMulParams<__half>{gate.dev, up.dev, out.dev, static_cast<int64_t>(n)}, nullptr).is_ok());
  std::vector<float> want(n);
  cpu::silu_mul(gate.host.data(), up.host.data(), static_cast<int64_t>(n), want.data());
  EXPECT_LT(test::scaled_max_error(out.download(), std::vector<double>(want.begin(), want.end())), 2e-3);

  ASSERT_TRUE(cuda::launch_add(cuda::AddParams<__half>{gate.dev, up.dev, static_cast<int64_t>(n)}, nullptr).is_ok());
  std::vector<float> sum = gate.host;
  cpu::add_inplace(sum.data(), up.host.data(), static_cast<int64_t>(n));
  EXPECT_LT(test::scaled_max_error(gate.download(), std::vector<double>(sum.begin(), sum.end())), 2e-3);
}

TEST(GpuPointwise, KvWritePlacesRowsThroughTheBlockTable) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(6);
  const int hkv = 4, hd = 64, block = 16, blocks = 8;
  const std::vector<int32_t> positions = {0, 1, 17, 40, 5};
  const std::vector<int32_t> token_seq = {0, 0, 0, 0, 1};
  const std::vector<int32_t> tables = {3, 6, 1, 2, 7, 0};  // [2, 3]
  test::DeviceArray<__nv_bfloat16> k(positions.size() * hkv * hd), v(k.size());
  test::DeviceArray<__nv_bfloat16> kc(static_cast<size_t>(blocks * block * hkv * hd)), vc(kc.size());
  k.fill_normal(rng, 1.0f);
  v.fill_normal(rng, 1.0f);
  kc.poison();
  vc.poison();
  test::DeviceInts d_pos(positions), d_seq(token_seq), d_tab(tables);
  cuda::KvWriteParams<__nv_bfloat16> p;
  p.kv = {kc.dev, vc.dev, blocks, block, hkv, hd};
  p.slots = {d_pos.dev, d_seq.dev, d_tab.dev, 3, static_cast<int64_t>(positions.size())};
  p.k = k.dev;
  p.v = v.dev;
  ASSERT_TRUE(cuda::launch_kv_write(p, nullptr).is_ok());
  const auto kgot = kc.download(), vgot = vc.download();
  for (size_t t = 0; t < positions.size(); ++t) {
    const int32_t blk = tables[static_cast<size_t>(token_seq[t] * 3 + positions[t] / block)];
    const size_t slot = static_cast<size_t>(blk * block + positions[t] % block);
    for (size_t j = 0; j < static_cast<size_t>(hkv * hd); ++j) {
      ASSERT_EQ(kgot[slot * hkv * hd + j], k.host[t * hkv * hd + j]);
      ASSERT_EQ(vgot[slot * hkv * hd + j], v.host[t * hkv * hd + j]);
    }
  }
}

}  // namespace
}  // namespace fdpp

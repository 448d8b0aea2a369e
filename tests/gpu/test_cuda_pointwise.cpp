// Pointwise GPU kernels against the CPU reference ops on fresh random inputs, fp16 and bf16.
#include <algorithm>
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
  for (auto [rows, dim] : {std::pair<int64_t, int64_t>{1, 64}, {7, 4096}, {64, 5120}, {3, 333}, {1, 8192}, {2, 12288}}) {
    for (bool residual : {false, true}) {
      check_rmsnorm<__half>(rows, dim, residual, seed++);
      check_rmsnorm<__nv_bfloat16>(rows, dim, residual, seed++);
    }
  }
}

// rsqrt(mean(x[r, :]^2) + eps) per row of host values: a deferred norm's row scale.
std::vector<float> row_inv_rms(const std::vector<float>& x, int64_t rows, int64_t dim, float eps) {
  std::vector<float> s(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < dim; ++i) sum += double{x[static_cast<size_t>(r * dim + i)]} * x[static_cast<size_t>(r * dim + i)];
    s[static_cast<size_t>(r)] = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + eps));
  }
  return s;
}

// The fused QKV split: q rotated into q_out, k rotated and v stored through the block table,
// against cpu::rope_rotate_half and cpu::kv_write on the same (device-rounded) inputs. With
// scale_dim > 0, a deferred norm: every qkv row first scaled by the inv rms of a row of scale_dim
// fresh values.
template <typename T>
void check_qkv_store(int hq, int hkv, int hd, uint32_t seed, int64_t scale_dim = 0) {
  SCOPED_TRACE("hq " + std::to_string(hq) + " hkv " + std::to_string(hkv) + " hd " + std::to_string(hd) +
               " row scale over " + std::to_string(scale_dim));
  std::mt19937 rng(seed);
  const int block = 16, blocks = 8, max_blocks = 3;
  const std::vector<int32_t> positions = {0, 1, 17, 40, 5, 47};
  const std::vector<int32_t> token_seq = {0, 0, 0, 0, 1, 1};
  const std::vector<int32_t> tables = {3, 6, 1, 2, 7, 0};  // [2, 3]
  const auto tokens = static_cast<int64_t>(positions.size());
  const int64_t width = (int64_t{hq} + 2 * hkv) * hd, kv_row = int64_t{hkv} * hd;
  test::DeviceArray<T> qkv(static_cast<size_t>(tokens * width)), q_out(static_cast<size_t>(tokens * hq * hd));
  test::DeviceArray<T> kc(static_cast<size_t>(blocks * block * kv_row)), vc(kc.size());
  qkv.fill_normal(rng, 1.0f);
  q_out.poison();
  kc.poison();
  vc.poison();
  test::DeviceArray<T> scale_rows(static_cast<size_t>(tokens * std::max<int64_t>(scale_dim, 1)));
  scale_rows.fill_normal(rng, 3.0f);
  std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
  for (int i = 0; i < hd / 2; ++i) inv_freq[static_cast<size_t>(i)] = std::pow(10000.0f, -2.0f * i / hd);
  test::DeviceInts d_pos(positions), d_seq(token_seq), d_tab(tables);
  float* d_freq = nullptr;
  ASSERT_EQ(cudaMalloc(&d_freq, inv_freq.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d_freq, inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  cuda::QkvStoreParams<T> p;
  p.kv = {kc.dev, vc.dev, blocks, block, hkv, hd};
  p.slots = {d_pos.dev, d_seq.dev, d_tab.dev, max_blocks, tokens};
  p.qkv = qkv.dev;
  p.inv_freq = d_freq;
  p.q_out = q_out.dev;
  p.num_q_heads = hq;
  if (scale_dim > 0) p.scale = {scale_rows.dev, scale_dim, 1e-5f};
  ASSERT_TRUE(cuda::launch_qkv_store(p, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(d_freq);

  std::vector<float> q(static_cast<size_t>(tokens * hq * hd)), k(static_cast<size_t>(tokens * kv_row)), v(k.size());
  const std::vector<float> scale = scale_dim > 0 ? row_inv_rms(scale_rows.host, tokens, scale_dim, 1e-5f)
                                                 : std::vector<float>(static_cast<size_t>(tokens), 1.0f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < width; ++j) {
      const float x = qkv.host[static_cast<size_t>(t * width + j)] * scale[static_cast<size_t>(t)];
      if (j < int64_t{hq} * hd) q[static_cast<size_t>(t * hq * hd + j)] = x;
      else if (j < int64_t{hq} * hd + kv_row) k[static_cast<size_t>(t * kv_row + j - hq * hd)] = x;
      else v[static_cast<size_t>(t * kv_row + j - hq * hd - kv_row)] = x;
    }
  cpu::rope_rotate_half(q.data(), tokens, hq, hd, positions, inv_freq);
  cpu::rope_rotate_half(k.data(), tokens, hkv, hd, positions, inv_freq);
  EXPECT_LT(test::scaled_max_error(q_out.download(), std::vector<double>(q.begin(), q.end())), tol<T>());
  const auto kgot = kc.download(), vgot = vc.download();
  std::vector<float> kslot, vslot;
  std::vector<double> kwant, vwant;
  for (size_t t = 0; t < positions.size(); ++t) {
    const int32_t blk = tables[static_cast<size_t>(token_seq[t] * max_blocks + positions[t] / block)];
    const auto slot = static_cast<size_t>(blk * block + positions[t] % block);
    for (size_t j = 0; j < static_cast<size_t>(kv_row); ++j) {
      kslot.push_back(kgot[slot * static_cast<size_t>(kv_row) + j]);
      vslot.push_back(vgot[slot * static_cast<size_t>(kv_row) + j]);
      kwant.push_back(k[t * static_cast<size_t>(kv_row) + j]);
      vwant.push_back(v[t * static_cast<size_t>(kv_row) + j]);
    }
  }
  EXPECT_LT(test::scaled_max_error(kslot, kwant), tol<T>());
  if (scale_dim == 0) EXPECT_EQ(test::scaled_max_error(vslot, vwant), 0.0);  // v is copied bit for bit
  else EXPECT_LT(test::scaled_max_error(vslot, vwant), tol<T>());
}

TEST(GpuPointwise, QkvStoreMatchesCpuRopeAndCacheWrite) {
  FDPP_REQUIRE_GPU();
  check_qkv_store<__half>(32, 8, 128, 1);
  check_qkv_store<__nv_bfloat16>(4, 4, 64, 2);
  check_qkv_store<__half>(2, 1, 8, 3);
  check_qkv_store<__half>(5, 1, 80, 4);     // 3 heads per block: groups straddle q/k/v
  check_qkv_store<__nv_bfloat16>(4, 2, 256, 5);
  check_qkv_store<__half>(2, 1, 512, 6);    // more pairs than threads in a block
}

// A deferred norm (the norm weight folded into wqkv): each row scaled by its input row's inv rms,
// across the 512-thread blocks' head groups, vectorised rows (4096) and ragged ones (333).
TEST(GpuPointwise, QkvStoreAppliesADeferredNormScale) {
  FDPP_REQUIRE_GPU();
  check_qkv_store<__half>(32, 8, 128, 11, 4096);
  check_qkv_store<__nv_bfloat16>(32, 32, 128, 12, 4096);
  check_qkv_store<__half>(5, 1, 80, 13, 333);
  check_qkv_store<__nv_bfloat16>(4, 2, 64, 14, 4104);
  check_qkv_store<__half>(2, 1, 8, 15, 64);
}

// The interleaved silu_mul of a deferred norm against rmsnorm's scale applied to gate and up on the
// host: F a multiple of 8 (16-byte path) and not, input rows of 4096 and of 333.
template <typename T>
void check_silu_mul_row_scaled(int64_t rows, int64_t F, int64_t dim, uint32_t seed) {
  SCOPED_TRACE(std::to_string(rows) + " rows, F " + std::to_string(F) + ", dim " + std::to_string(dim));
  std::mt19937 rng(seed);
  test::DeviceArray<T> gate_up(static_cast<size_t>(rows * 2 * F)), out(static_cast<size_t>(rows * F));
  test::DeviceArray<T> x(static_cast<size_t>(rows * dim));
  gate_up.fill_normal(rng, 40.0f);  // the product of unnormalised rows: larger than a normed one's
  x.fill_normal(rng, 20.0f);
  out.poison();
  cuda::SiluMulParams<T> p{gate_up.dev, out.dev, rows, F, true, {x.dev, dim, 1e-5f}};
  ASSERT_TRUE(cuda::launch_silu_mul(p, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> scale = row_inv_rms(x.host, rows, dim, 1e-5f);
  std::vector<float> gate(static_cast<size_t>(F)), up(static_cast<size_t>(F)), want(static_cast<size_t>(rows * F));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < F; ++j) {
      gate[static_cast<size_t>(j)] = gate_up.host[static_cast<size_t>(r * 2 * F + 2 * j)] * scale[static_cast<size_t>(r)];
      up[static_cast<size_t>(j)] = gate_up.host[static_cast<size_t>(r * 2 * F + 2 * j + 1)] * scale[static_cast<size_t>(r)];
    }
    cpu::silu_mul(gate.data(), up.data(), F, want.data() + r * F);
  }
  EXPECT_LT(test::scaled_max_error(out.download(), std::vector<double>(want.begin(), want.end())), tol<T>());
}

TEST(GpuPointwise, SiluMulAppliesADeferredNormScale) {
  FDPP_REQUIRE_GPU();
  check_silu_mul_row_scaled<__half>(16, 11008, 4096, 21);
  check_silu_mul_row_scaled<__nv_bfloat16>(64, 14336, 4096, 22);
  check_silu_mul_row_scaled<__half>(3, 11013, 333, 23);
  check_silu_mul_row_scaled<__nv_bfloat16>(1, 688, 256, 24);
  // Without interleaving there is no deferred scale: a clear refusal, not a wrong result.
  test::DeviceArray<__half> gu(64), o(16), x(8);
  const cuda::SiluMulParams<__half> halves{gu.dev, o.dev, 2, 8, false, {x.dev, 4, 1e-5f}};
  EXPECT_FALSE(cuda::launch_silu_mul(halves, nullptr).is_ok());
}

// A norm weight folded into a projection at load: w [N, K] *= g [K] per column, rounded once.
TEST(GpuPointwise, ScaleColumnsFoldsANormWeight) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(31);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{12288, 4096}, {7, 333}}) {
    test::DeviceArray<__nv_bfloat16> w(static_cast<size_t>(n * k)), g(static_cast<size_t>(k));
    w.fill_normal(rng, 0.02f);
    g.fill_normal(rng, 0.5f, 1.0f);
    ASSERT_TRUE(cuda::launch_scale_columns(w.dev, g.dev, n, k, nullptr).is_ok());
    std::vector<double> want(w.size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = double{w.host[i]} * g.host[i % static_cast<size_t>(k)];
    EXPECT_LT(test::scaled_max_error(w.download(), want), 1e-2) << n << "x" << k;
  }
}

TEST(GpuPointwise, SiluMulAndAddMatchCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(5);
  const int64_t rows = 3, F = 11008 + 5;
  const auto n = static_cast<size_t>(rows * F);
  test::DeviceArray<__half> gate_up(2 * n), out(n), y(n);
  gate_up.fill_normal(rng, 3.0f);
  y.fill_normal(rng, 1.0f);
  out.poison();
  ASSERT_TRUE(cuda::launch_silu_mul(cuda::SiluMulParams<__half>{gate_up.dev, out.dev, rows, F, false, {}}, nullptr).is_ok());
  std::vector<float> want(n);
  for (int64_t r = 0; r < rows; ++r) {
    const float* gu = gate_up.host.data() + r * 2 * F;
    cpu::silu_mul(gu, gu + F, F, want.data() + r * F);
  }
  EXPECT_LT(test::scaled_max_error(out.download(), std::vector<double>(want.begin(), want.end())), 2e-3);

  // Interleaved (the CUDA backend's gate/up layout): gate j in column 2j, up j in 2j + 1.
  out.poison();
  ASSERT_TRUE(cuda::launch_silu_mul(cuda::SiluMulParams<__half>{gate_up.dev, out.dev, rows, F, true, {}}, nullptr).is_ok());
  std::vector<float> gate(static_cast<size_t>(F)), up(static_cast<size_t>(F)), want_interleaved(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < F; ++j) {
      gate[j] = gate_up.host[r * 2 * F + 2 * j];
      up[j] = gate_up.host[r * 2 * F + 2 * j + 1];
    }
    cpu::silu_mul(gate.data(), up.data(), F, want_interleaved.data() + r * F);
  }
  EXPECT_LT(test::scaled_max_error(out.download(),
                                   std::vector<double>(want_interleaved.begin(), want_interleaved.end())),
            2e-3);
  ASSERT_TRUE(cuda::launch_silu_mul(cuda::SiluMulParams<__half>{gate_up.dev, out.dev, rows, F, false, {}}, nullptr).is_ok());

  std::vector<float> sum = out.download();
  cpu::add_inplace(sum.data(), y.host.data(), static_cast<int64_t>(n));
  ASSERT_TRUE(cuda::launch_add(cuda::AddParams<__half>{out.dev, y.dev, static_cast<int64_t>(n)}, nullptr).is_ok());
  EXPECT_LT(test::scaled_max_error(out.download(), std::vector<double>(sum.begin(), sum.end())), 2e-3);
}

}  // namespace
}  // namespace fdpp

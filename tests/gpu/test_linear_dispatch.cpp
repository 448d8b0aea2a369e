// The heuristic dataflow end to end (backend/cuda/gemm/linear_dispatch.h): every linear shape of
// Llama-2-7B, Llama-3-8B and Qwen2-7B (fused QKV and gate/up, LM heads) and odd shapes, at
// M in {1, 2, 3, 7, 8, 9, 16, 31, 64, 127, 512}, through whichever implementation the dispatcher
// picks (and each one forced where it can run), against a float64 reference. Weights are filled on
// the device; the reference reads back 64 sampled output features (their weight rows) so that the
// largest shapes stay cheap. Outputs are poisoned (NaN) before every run.
#include <cuda_fp16.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/gemm/flat_gemm.cuh"
#include "backend/cuda/gemm/flat_gemm_traits.h"
#include "backend/cuda/gemm/linear_dispatch.h"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "backend/linear_tuner.h"
#include "gpu/gpu_test_util.h"
#include "model/model_shapes.h"

namespace fdpp {
namespace {

constexpr int kSampledFeatures = 64;

struct DeviceHalfs {
  __half* dev = nullptr;
  size_t n = 0;
  explicit DeviceHalfs(size_t n_) : n(n_) { EXPECT_EQ(cudaMalloc(&dev, std::max<size_t>(n, 1) * 2), cudaSuccess); }
  ~DeviceHalfs() { cudaFree(dev); }
  DeviceHalfs(const DeviceHalfs&) = delete;
  DeviceHalfs& operator=(const DeviceHalfs&) = delete;
  std::vector<float> rows(size_t first, size_t count, size_t width) const {
    std::vector<__half> h(count * width);
    EXPECT_EQ(cudaMemcpy(h.data(), dev + first * width, h.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) f[i] = __half2float(h[i]);
    return f;
  }
};

// Runs out = x . w^T for one shape at every M, through the dispatcher's choice and through every
// implementation that can serve the operands, and checks the sampled output features.
void check_shape(cuda::LinearDispatcher& dispatch, const LinearShape& shape, const std::vector<int64_t>& ms,
                 std::mt19937& rng) {
  SCOPED_TRACE(shape.name + " [" + std::to_string(shape.n) + ", " + std::to_string(shape.k) + "]");
  const int64_t max_m = *std::max_element(ms.begin(), ms.end());
  DeviceHalfs w(static_cast<size_t>(shape.n * shape.k)), x(static_cast<size_t>(max_m * shape.k)),
      out(static_cast<size_t>(max_m * shape.n));
  ASSERT_TRUE(cuda::launch_fill_random(w.dev, shape.n * shape.k, rng(), 0.0f, 0.02f, nullptr).is_ok());
  ASSERT_TRUE(cuda::launch_fill_random(x.dev, max_m * shape.k, rng(), 0.0f, 1.0f, nullptr).is_ok());
  std::vector<size_t> features;
  for (int i = 0; i < kSampledFeatures; ++i) features.push_back(rng() % static_cast<size_t>(shape.n));
  features.push_back(static_cast<size_t>(shape.n - 1));  // the ragged edge
  std::vector<std::vector<float>> w_rows;
  for (size_t f : features) w_rows.push_back(w.rows(f, 1, static_cast<size_t>(shape.k)));
  const std::vector<float> x_host = x.rows(0, static_cast<size_t>(max_m), static_cast<size_t>(shape.k));

  for (int64_t m : ms) {
    TensorView xv = TensorView::contiguous(x.dev, DType::kF16, {m, shape.k}, Device::kCuda);
    TensorView wv = TensorView::contiguous(w.dev, DType::kF16, {shape.n, shape.k}, Device::kCuda);
    TensorView ov = TensorView::contiguous(out.dev, DType::kF16, {m, shape.n}, Device::kCuda);
    std::vector<std::optional<LinearImpl>> runs = {std::nullopt};
    for (LinearImpl impl : {LinearImpl::kGemv, LinearImpl::kFlatGemm, LinearImpl::kCublasLt})
      if (dispatch.can_run(impl, xv, wv)) runs.push_back(impl);
    for (const auto& impl : runs) {
      const LinearImpl used = impl ? *impl : dispatch.choose(xv, wv);
      SCOPED_TRACE("M=" + std::to_string(m) + " " + linear_impl_name(used) + (impl ? " (forced)" : " (chosen)"));
      ASSERT_EQ(cudaMemset(out.dev, 0xff, out.n * 2), cudaSuccess);
      if (impl) dispatch.run_with(*impl, xv, wv, TensorView{}, ov);
      else dispatch.run(xv, wv, TensorView{}, ov);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> got = out.rows(0, static_cast<size_t>(m), static_cast<size_t>(shape.n));
      double worst = 0, scale = 1e-30;
      for (int64_t r = 0; r < m; ++r) {
        for (size_t j = 0; j < features.size(); ++j) {
          double want = 0;
          const float* xr = x_host.data() + r * shape.k;
          for (int64_t k = 0; k < shape.k; ++k) want += double(xr[k]) * w_rows[j][static_cast<size_t>(k)];
          const float g = got[static_cast<size_t>(r * shape.n) + features[j]];
          worst = std::max(worst, std::isfinite(g) ? std::abs(g - want) : 1e30);
          scale = std::max(scale, std::abs(want));
        }
      }
      EXPECT_LT(worst / scale, 4e-3);
    }
  }
}

TEST(GpuLinearDispatch, ModelShapesAtEveryM) {
  FDPP_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  cuda::LinearDispatcher dispatch(stream, "test", LinearTable{});
  std::mt19937 rng(11);
  const std::vector<int64_t> all_m = {1, 2, 3, 7, 8, 9, 16, 31, 64, 127, 512};
  const std::vector<int64_t> few_m = {1, 9, 64, 512};
  for (const char* model : {"llama2-7b", "llama3-8b", "qwen2-7b"}) {
    SCOPED_TRACE(model);
    for (const LinearShape& shape : model_linear_shapes(named_model_shape(model)))
      check_shape(dispatch, shape, shape.name == "lm_head" ? few_m : all_m, rng);
  }
}

TEST(GpuLinearDispatch, RaggedShapesFallThrough) {
  FDPP_REQUIRE_GPU();
  cuda::LinearDispatcher dispatch(nullptr, "test", LinearTable{});
  std::mt19937 rng(12);
  const std::vector<int64_t> ms = {1, 3, 8, 9, 31, 64, 127};
  // N and K off every tile; K % 8 != 0 leaves the flat GEMM out (the dispatcher must skip it).
  for (const LinearShape& shape : {LinearShape{"odd", 4097, 1000}, LinearShape{"odd k", 1000, 4100},
                                   LinearShape{"tiny", 17, 40}})
    check_shape(dispatch, shape, ms, rng);
}

TEST(GpuLinearDispatch, TheTableDecidesAndIncapableImplementationsHandOn) {
  FDPP_REQUIRE_GPU();
  LinearTable table;
  table.set({"test", DType::kF16, 512, 256}, {2, 16});
  table.set({"test", DType::kF16, 512, 260}, {2, 16});  // K % 8 != 0: no flat GEMM
  cuda::LinearDispatcher dispatch(nullptr, "test", table);
  DeviceHalfs buf(512 * 512);
  // The choice for x [m, k] . w [512, k]^T, as a plain projection or as the gated SiLU one.
  auto choice = [&](int64_t m, int64_t k, bool gated) {
    const TensorView x = TensorView::contiguous(buf.dev, DType::kF16, {m, k}, Device::kCuda);
    const TensorView w = TensorView::contiguous(buf.dev, DType::kF16, {512, k}, Device::kCuda);
    return gated ? dispatch.choose_gated(x, w) : dispatch.choose(x, w);
  };
  auto pick = [&](int64_t m, int64_t k) { return choice(m, k, false); };
  EXPECT_EQ(pick(1, 256), LinearImpl::kGemv);
  EXPECT_EQ(pick(2, 256), LinearImpl::kGemv);
  EXPECT_EQ(pick(3, 256), LinearImpl::kFlatGemm);
  EXPECT_EQ(pick(16, 256), LinearImpl::kFlatGemm);
  EXPECT_EQ(pick(17, 256), LinearImpl::kCublasLt);
  EXPECT_EQ(pick(3, 260), LinearImpl::kCublasLt);  // flat GEMM cannot serve K % 8 != 0
  // Shapes the table does not list take the built-in defaults.
  EXPECT_EQ(pick(kDefaultLinearInflection.m1, 128), LinearImpl::kGemv);
  EXPECT_EQ(pick(kDefaultLinearInflection.m1 + 1, 128), LinearImpl::kFlatGemm);
  EXPECT_EQ(pick(kDefaultLinearInflection.m2 + 1, 128), LinearImpl::kCublasLt);
  // The gated SiLU projection: the table's entry where it lists the shape, its own default where not.
  auto pick_gated = [&](int64_t m, int64_t k) { return choice(m, k, true); };
  EXPECT_EQ(pick_gated(2, 256), LinearImpl::kGemv);
  EXPECT_EQ(pick_gated(17, 256), LinearImpl::kCublasLt);
  EXPECT_EQ(pick_gated(kDefaultGatedLinearInflection.m1, 128), LinearImpl::kGemv);
  EXPECT_EQ(pick_gated(kDefaultGatedLinearInflection.m2, 128), LinearImpl::kFlatGemm);
  EXPECT_EQ(pick_gated(kDefaultGatedLinearInflection.m2 + 1, 128), LinearImpl::kCublasLt);
  // Asking for one role first does not change the other's answer (the cache keys both).
  EXPECT_EQ(pick(kDefaultGatedLinearInflection.m2, 128),
            kDefaultGatedLinearInflection.m2 > kDefaultLinearInflection.m2 ? LinearImpl::kCublasLt
                                                                            : LinearImpl::kFlatGemm);
}

// Which implementations take the QKV epilogue (the product's values are checked against qkv_store
// in test_qkv_epilogue.cpp and end to end in GpuModel*): the GEMV and the flat GEMM at few rows
// with a head dim they rotate, never cuBLASLt; asking another one to run it is an error that names
// the implementation, and launches nothing.
TEST(GpuLinearDispatch, QkvEpilogueOnlyWhereTheKernelRotates) {
  FDPP_REQUIRE_GPU();
  cuda::LinearDispatcher dispatch(nullptr, "test", LinearTable{});
  const int64_t hd = 64, N = (4 + 2 * 2) * hd, K = 256;
  DeviceHalfs buf(static_cast<size_t>(N * K));
  auto view = [&](int64_t rows, int64_t cols) {
    return TensorView::contiguous(buf.dev, DType::kF16, {rows, cols}, Device::kCuda);
  };
  const TensorView w = view(N, K);
  EXPECT_TRUE(dispatch.can_rope_store(LinearImpl::kGemv, view(1, K), w, hd));
  EXPECT_FALSE(dispatch.can_rope_store(LinearImpl::kGemv, view(1, K), w, 7));  // odd: no rotation pairs
  EXPECT_TRUE(dispatch.can_rope_store(LinearImpl::kFlatGemm, view(cuda::kFlatGemmRopeMaxM, K), w, hd));
  EXPECT_FALSE(dispatch.can_rope_store(LinearImpl::kFlatGemm, view(cuda::kFlatGemmRopeMaxM + 1, K), w, hd));
  EXPECT_FALSE(dispatch.can_rope_store(LinearImpl::kFlatGemm, view(4, K), w, 8));  // its tiles rotate 16 wide
  EXPECT_FALSE(dispatch.can_rope_store(LinearImpl::kCublasLt, view(1, K), w, hd));
  const cuda::RopeStore<__half> rope;  // never read: the refusal comes first
  try {
    dispatch.run_rope_store_with(LinearImpl::kCublasLt, view(1, K), w, TensorView{}, LinearFusion{}, rope);
    ADD_FAILURE() << "cuBLASLt ran the QKV epilogue";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cublaslt cannot serve the QKV epilogue"), std::string::npos) << e.what();
  }
  EXPECT_EQ(dispatch.calls()[static_cast<size_t>(LinearImpl::kCublasLt)], 0u);
}

// run_fused: the residual add in every implementation's epilogue (out += x . w^T in place), and
// the RMSNorm prologue taken by the GEMV and the flat GEMM (M <= 8) and declined (nothing
// launched) by cuBLASLt and by the flat GEMM at M = 9-16.
TEST(GpuLinearDispatch, FusedAccumulateAndNormPrologue) {
  FDPP_REQUIRE_GPU();
  const int64_t N = 512, K = 256;
  LinearTable table;
  table.set({"test", DType::kF16, N, K}, {2, 16});  // M 1-2 GEMV, 3-16 flat GEMM, above cuBLASLt
  cuda::LinearDispatcher dispatch(nullptr, "test", table);
  std::mt19937 rng(13);
  const int64_t max_m = 32;
  DeviceHalfs w(static_cast<size_t>(N * K)), x(static_cast<size_t>(max_m * K)), g(static_cast<size_t>(K)),
      out(static_cast<size_t>(max_m * N));
  ASSERT_TRUE(cuda::launch_fill_random(w.dev, N * K, rng(), 0.0f, 0.05f, nullptr).is_ok());
  ASSERT_TRUE(cuda::launch_fill_random(x.dev, max_m * K, rng(), 0.3f, 2.0f, nullptr).is_ok());
  ASSERT_TRUE(cuda::launch_fill_random(g.dev, K, rng(), 1.0f, 0.2f, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> wh = w.rows(0, static_cast<size_t>(N), static_cast<size_t>(K));
  const std::vector<float> xh = x.rows(0, static_cast<size_t>(max_m), static_cast<size_t>(K));
  const std::vector<float> gh = g.rows(0, 1, static_cast<size_t>(K));
  const TensorView wv = TensorView::contiguous(w.dev, DType::kF16, {N, K}, Device::kCuda);
  const TensorView gv = TensorView::contiguous(g.dev, DType::kF16, {K}, Device::kCuda);
  for (int64_t m : {1, 2, 8, 16, 32}) {
    const TensorView xv = TensorView::contiguous(x.dev, DType::kF16, {m, K}, Device::kCuda);
    TensorView ov = TensorView::contiguous(out.dev, DType::kF16, {m, N}, Device::kCuda);
    const LinearImpl impl = dispatch.choose(xv, wv);
    SCOPED_TRACE("M=" + std::to_string(m) + " " + linear_impl_name(impl));
    for (bool norm : {false, true}) {
      SCOPED_TRACE(norm ? "norm prologue" : "accumulate");
      ASSERT_TRUE(cuda::launch_fill_random(out.dev, m * N, rng(), 0.0f, 1.0f, nullptr).is_ok());
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> before = out.rows(0, static_cast<size_t>(m), static_cast<size_t>(N));
      const LinearFusion fusion = norm ? LinearFusion{gv, 1e-5f, false} : LinearFusion{TensorView{}, 0.0f, true};
      const bool ran = dispatch.run_fused(xv, wv, TensorView{}, fusion, ov);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      const std::vector<float> got = out.rows(0, static_cast<size_t>(m), static_cast<size_t>(N));
      // The GEMV and the streamed flat GEMM take the norm, the flat GEMM up to kNormFusionMaxM rows.
      if (norm && (impl == LinearImpl::kCublasLt || (impl == LinearImpl::kFlatGemm &&
                                                     m > cuda::FlatGemmTraits::kNormFusionMaxM))) {
        EXPECT_FALSE(ran);
        EXPECT_EQ(got, before) << "a declined fusion must launch nothing";
        continue;
      }
      ASSERT_TRUE(ran);
      double worst = 0, scale = 1e-30;
      for (int64_t r = 0; r < m; ++r) {
        const float* xr = xh.data() + r * K;
        double inv_rms = 1.0;
        if (norm) {
          double ss = 0;
          for (int64_t k = 0; k < K; ++k) ss += double(xr[k]) * xr[k];
          inv_rms = 1.0 / std::sqrt(ss / K + 1e-5);
        }
        for (int64_t n = 0; n < N; ++n) {
          double dot = 0;
          for (int64_t k = 0; k < K; ++k)
            dot += double(xr[k]) * (norm ? gh[static_cast<size_t>(k)] : 1.0f) * wh[static_cast<size_t>(n * K + k)];
          const auto i = static_cast<size_t>(r * N + n);
          const double want = norm ? dot * inv_rms : before[i] + dot;
          worst = std::max(worst, std::isfinite(got[i]) ? std::abs(got[i] - want) : 1e30);
          scale = std::max(scale, std::abs(want));
        }
      }
      EXPECT_LT(worst / scale, 4e-3);
    }
  }
}

// CudaBackend::gate_up_silu (interleaved gate/up rows, Backend::interleaves_gate_up) against
// CpuBackend::gate_up_silu (gate rows then up rows) on the same weights, with the RMSNorm, on every
// route a table gives it: the GEMV's gated epilogue with the norm (M 1-2), the flat GEMM's with the
// norm fused (M 3-8) and after a separate norm (M 9-16), and cuBLASLt's products through the
// interleaved silu_mul (M 17+); both dtypes. Outputs are poisoned first.
TEST(GpuLinearDispatch, GateUpSiluThroughTheBackendMatchesCpu) {
  FDPP_REQUIRE_GPU();
  const int64_t F = 200, K = 256, max_m = 24;
  const std::filesystem::path table_path =
      std::filesystem::temp_directory_path() / ("fdpp_gate_up_table_" + std::to_string(::getpid()) + ".json");
  LinearTable table;
  for (DType dt : {DType::kF16, DType::kBF16}) table.set({cuda::device_name(0), dt, 2 * F, K}, {2, 16});
  table.save(table_path);
  ASSERT_EQ(::setenv("FDPP_LINEAR_TABLE", table_path.c_str(), 1), 0);

  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> gate(static_cast<size_t>(F * K)), up(gate.size()), x(static_cast<size_t>(max_m * K)),
      g(static_cast<size_t>(K));
  for (float& v : gate) v = normal(rng) * 0.08f;
  for (float& v : up) v = normal(rng) * 0.08f;
  for (float& v : x) v = 0.3f + 2.0f * normal(rng);
  for (float& v : g) v = 1.0f + 0.2f * normal(rng);
  std::vector<float> concatenated(gate), interleaved(static_cast<size_t>(2 * F * K));
  concatenated.insert(concatenated.end(), up.begin(), up.end());
  for (int64_t j = 0; j < F; ++j) {
    std::copy_n(gate.begin() + j * K, K, interleaved.begin() + 2 * j * K);
    std::copy_n(up.begin() + j * K, K, interleaved.begin() + (2 * j + 1) * K);
  }
  auto view = [](std::vector<float>& v, std::initializer_list<int64_t> shape) {
    return TensorView::contiguous(v.data(), DType::kF32, shape);
  };

  CpuBackend cpu;
  for (DType dt : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(dtype_name(dt));
    cuda::CudaBackend gpu(0, dt);
    ASSERT_TRUE(gpu.interleaves_gate_up());
    const TensorView w_dev = gpu.adopt_weight(view(interleaved, {2 * F, K}));
    const TensorView g_dev = gpu.adopt_weight(view(g, {K}));
    const TensorView x_dev_all = gpu.adopt_weight(view(x, {max_m, K}));
    for (int64_t m : {1, 2, 3, 8, 9, 16, 17, 24}) {
      SCOPED_TRACE("M=" + std::to_string(m));
      // The CPU reads the same inputs the GPU holds: x and g rounded to the activation dtype.
      std::vector<float> xr(x.begin(), x.begin() + m * K), gr(g);
      for (float& v : xr) v = dt == DType::kF16 ? half_to_float(float_to_half(v)) : bf16_to_float(float_to_bf16(v));
      for (float& v : gr) v = dt == DType::kF16 ? half_to_float(float_to_half(v)) : bf16_to_float(float_to_bf16(v));
      DeviceTensor want = cpu.allocate(DType::kF32, {m, F}), normed = cpu.allocate(DType::kF32, {m, K}),
                   products = cpu.allocate(DType::kF32, {m, 2 * F});
      cpu.gate_up_silu(view(xr, {m, K}), view(concatenated, {2 * F, K}), LinearFusion{view(gr, {K}), 1e-5f},
                       want.view(), normed.view(), products.view());

      DeviceTensor act = gpu.allocate(dt, {m, F}), gpu_normed = gpu.allocate(dt, {m, K}),
                   gpu_products = gpu.allocate(dt, {m, 2 * F});
      ASSERT_EQ(cudaMemset(act.view().data, 0xff, act.view().nbytes()), cudaSuccess);
      TensorView xv = x_dev_all.first_rows(m);
      gpu.gate_up_silu(xv, w_dev, LinearFusion{g_dev, 1e-5f}, act.view(), gpu_normed.view(), gpu_products.view());
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      std::vector<uint16_t> bits(static_cast<size_t>(m * F));
      ASSERT_EQ(cudaMemcpy(bits.data(), act.view().data, bits.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      std::vector<float> got(bits.size());
      for (size_t i = 0; i < bits.size(); ++i)
        got[i] = dt == DType::kF16 ? half_to_float(bits[i]) : bf16_to_float(bits[i]);
      const auto* w = static_cast<const float*>(want.view().data);
      EXPECT_LT(test::scaled_max_error(got, std::vector<double>(w, w + m * F)), dt == DType::kF16 ? 5e-3 : 3e-2);
    }
  }
  ::unsetenv("FDPP_LINEAR_TABLE");
  std::filesystem::remove(table_path);
}

// Programmatic dependent launch (backend/cuda/launch.cuh) lets each linear kernel start loading
// weights while the previous kernel still runs; its inputs must still wait. A Llama-2-7B MLP
// chain on a stream, without a synchronisation between launches: x feeds the norm-fused up
// projection, whose output feeds the down projection that adds into x in place (the residual),
// four times. The final x must be the same bits with PDL on and off, for the GEMV, the flat GEMM
// and the dispatcher's own choice (cuBLASLt past M = 8 or 16), and normalising first where the
// choice declines the norm.
TEST(GpuLinearDispatch, ProgrammaticLaunchChainMatchesSerialLaunches) {
  FDPP_REQUIRE_GPU();
  const int64_t D = 4096, F = 11008, max_m = 16;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  std::mt19937 rng(14);
  DeviceHalfs w_up(static_cast<size_t>(F * D)), w_down(static_cast<size_t>(D * F)), g(static_cast<size_t>(D)),
      x0(static_cast<size_t>(max_m * D)), x(static_cast<size_t>(max_m * D)), xn(static_cast<size_t>(max_m * D)),
      h(static_cast<size_t>(max_m * F));
  ASSERT_TRUE(cuda::launch_fill_random(w_up.dev, F * D, rng(), 0.0f, 0.02f, nullptr).is_ok());
  ASSERT_TRUE(cuda::launch_fill_random(w_down.dev, D * F, rng(), 0.0f, 0.01f, nullptr).is_ok());
  ASSERT_TRUE(cuda::launch_fill_random(g.dev, D, rng(), 1.0f, 0.2f, nullptr).is_ok());
  ASSERT_TRUE(cuda::launch_fill_random(x0.dev, max_m * D, rng(), 0.0f, 1.0f, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  struct Choice {
    const char* name;
    LinearInflection inflection;  // for both shapes
  };
  for (const Choice& choice : {Choice{"gemv", {8, 8}}, Choice{"flat_gemm", {0, 16}}, Choice{"built-in", {3, 8}}}) {
    LinearTable table;
    table.set({"test", DType::kF16, F, D}, choice.inflection);
    table.set({"test", DType::kF16, D, F}, choice.inflection);
    cuda::LinearDispatcher dispatch(stream, "test", table);
    for (int64_t m : {1, 4, 16}) {
      if (std::string(choice.name) == "gemv" && m > 8) continue;
      SCOPED_TRACE(std::string(choice.name) + " M=" + std::to_string(m));
      TensorView xv = TensorView::contiguous(x.dev, DType::kF16, {m, D}, Device::kCuda);
      TensorView xnv = TensorView::contiguous(xn.dev, DType::kF16, {m, D}, Device::kCuda);
      TensorView hv = TensorView::contiguous(h.dev, DType::kF16, {m, F}, Device::kCuda);
      const TensorView upv = TensorView::contiguous(w_up.dev, DType::kF16, {F, D}, Device::kCuda);
      const TensorView downv = TensorView::contiguous(w_down.dev, DType::kF16, {D, F}, Device::kCuda);
      const TensorView gv = TensorView::contiguous(g.dev, DType::kF16, {D}, Device::kCuda);
      std::vector<std::vector<float>> results;
      for (bool pdl : {false, true}) {
        cuda::set_programmatic_launch(pdl);
        ASSERT_EQ(cudaMemcpyAsync(x.dev, x0.dev, x.n * 2, cudaMemcpyDeviceToDevice, stream), cudaSuccess);
        ASSERT_EQ(cudaMemsetAsync(h.dev, 0xff, h.n * 2, stream), cudaSuccess);
        for (int layer = 0; layer < 4; ++layer) {
          if (!dispatch.run_fused(xv, upv, TensorView{}, LinearFusion{gv, 1e-5f, false}, hv)) {
            cuda::RmsNormParams<__half> norm;
            norm.x = x.dev;
            norm.weight = g.dev;
            norm.out = xn.dev;
            norm.rows = m;
            norm.dim = D;
            norm.eps = 1e-5f;
            ASSERT_TRUE(cuda::launch_rmsnorm(norm, stream).is_ok());
            dispatch.run(xnv, upv, TensorView{}, hv);
          }
          ASSERT_TRUE(dispatch.run_fused(hv, downv, TensorView{}, LinearFusion{TensorView{}, 0.0f, true}, xv));
        }
        ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
        results.push_back(x.rows(0, static_cast<size_t>(m), static_cast<size_t>(D)));
      }
      cuda::set_programmatic_launch(true);
      const std::vector<float> start = x0.rows(0, static_cast<size_t>(m), static_cast<size_t>(D));
      size_t finite = 0, moved = 0;
      for (size_t i = 0; i < results[1].size(); ++i) {
        finite += std::isfinite(results[1][i]) ? 1 : 0;
        moved += results[1][i] != start[i] ? 1 : 0;
      }
      EXPECT_EQ(finite, results[1].size());
      EXPECT_GT(moved, results[1].size() / 2) << "the chain must change x";
      EXPECT_TRUE(results[0] == results[1]) << "PDL changed the result";
    }
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace fdpp

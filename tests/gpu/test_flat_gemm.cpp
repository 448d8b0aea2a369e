// The tensor-core flat GEMM (backend/cuda/gemm/flat_gemm.cuh) against the CPU reference
// cpu::linear on fresh random inputs rounded to the device dtype, fp16 and bf16: the linear shapes
// of Llama-2-7B, Llama-3-8B and Qwen2-7B (QKV with bias), odd N, K a multiple of 8 but not of the
// 64-element K tile, M from 1 to 64 (medium shapes every M, the largest a few), both mainloops
// (streamed, the default up to M = 16, and pipelined), every epilogue (bias, residual, in-place
// residual, fp32 output), the RMSNorm prologue, split K of both mainloops (forced counts, the
// streamed kernel's cluster end included) and its determinism, and the arguments the kernel
// refuses. Outputs are poisoned (NaN) before every run.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/gemm/flat_gemm.cuh"
#include "gpu/linear_test_util.h"

namespace fdpp {
namespace {

using test::Epilogue;

// Uniform values in [-scale, scale) rounded to T, from a hash of (seed, index): fills the
// 100M-element weight matrices in parallel, far faster than a sequential normal generator.
template <typename T>
void fill_uniform(test::DeviceArray<T>& a, uint64_t seed, float scale) {
  const int64_t n = static_cast<int64_t>(a.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i);  // splitmix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    a.host[static_cast<size_t>(i)] = test::from_device_type(test::to_device_type<T>((2.0f * u - 1.0f) * scale));
  }
  a.upload();
}

// Weights [N, K] and bias [N] of one shape, on the device and the host.
template <typename T>
struct Layer {
  int64_t N, K;
  test::DeviceArray<T> w, bias;
  Layer(int64_t n, int64_t k, uint64_t seed) : N(n), K(k), w(static_cast<size_t>(n * k)), bias(static_cast<size_t>(n)) {
    fill_uniform(w, seed, std::sqrt(3.0f / static_cast<float>(std::max<int64_t>(k, 1))));  // variance 1 / K
    fill_uniform(bias, seed + 1, 0.5f);
  }
  std::string name() const {
    return std::string(test::dtype_of<T>() == DType::kF16 ? "f16" : "bf16") + " [" + std::to_string(N) + ", " +
           std::to_string(K) + "]";
  }
};

// One flat GEMM of a fresh x [M, K] with the layer's weights against cpu::linear; failures name
// the mainloop, kernel variant and split count the plan chose.
// splits: FlatGemmParams::splits (0: the plan's policy); weight_buffers likewise.
template <typename T>
void check_one(const Layer<T>& layer, int64_t M, Epilogue epi, std::mt19937& rng,
               cuda::FlatGemmMainloop mainloop = cuda::FlatGemmMainloop::kAuto, int splits = 0,
               int weight_buffers = 0) {
  test::check_linear_run<T, cuda::FlatGemmParams<T>>(
      layer.w, layer.w.dev, layer.bias, M, layer.N, layer.K, epi, rng, layer.name(),
      [mainloop, splits, weight_buffers](cuda::FlatGemmParams<T> p, std::string* trace) {
        p.mainloop = mainloop;
        p.splits = splits;
        p.weight_buffers = weight_buffers;
        cuda::FlatGemmPlan plan;
        const Status planned = cuda::plan_flat_gemm(p, &plan);
        if (!planned.is_ok()) return planned;
        *trace = std::string(plan.streamed ? " (streamed" : " (pipelined") + ", variant " +
                 std::to_string(plan.m_class) + ", splits " + std::to_string(plan.splits) + ", weight buffers " +
                 std::to_string(plan.weight_buffers) + ")";
        if (splits > 0 && plan.splits != std::min(splits, std::max(1, plan.k_tiles)))
          return Status{ErrorCode::kInternal, "the plan did not take the forced split count" + *trace};
        if (weight_buffers > 0 && plan.weight_buffers != weight_buffers)
          return Status{ErrorCode::kInternal, "the plan did not take the forced weight buffers" + *trace};
        return cuda::launch_flat_gemm(p, nullptr);
      });
}

// M values of the test: across the variants (1, 2, 4, 8 n-tiles of 8 tokens) and their edges.
const std::vector<int64_t> kAllM = {1, 2, 3, 7, 8, 9, 16, 31, 33, 64};

// Runs the given M on one shape; the epilogue rotates with M so every shape sees several.
template <typename T>
void check_shape(int64_t N, int64_t K, const std::vector<int64_t>& ms, uint32_t seed, Epilogue first = Epilogue::kNone,
                 cuda::FlatGemmMainloop mainloop = cuda::FlatGemmMainloop::kAuto, int splits = 0,
                 int weight_buffers = 0) {
  const Layer<T> layer(N, K, seed);
  std::mt19937 rng(seed);
  int e = static_cast<int>(first);
  for (int64_t M : ms) {
    check_one<T>(layer, M, static_cast<Epilogue>(e++ % static_cast<int>(Epilogue::kCount)), rng, mainloop, splits,
                 weight_buffers);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

struct Shape {
  int64_t N, K;
};

// Waits for the device, then expects two outputs to hold the same bits.
void expect_same_bits(const test::DeviceArray<__half>& a, const test::DeviceArray<__half>& b, const std::string& what) {
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<__half> ha(a.size()), hb(b.size());
  ASSERT_EQ(cudaMemcpy(ha.data(), a.dev, ha.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(hb.data(), b.dev, hb.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(std::memcmp(ha.data(), hb.data(), ha.size() * 2), 0) << what;
}

// Medium shapes: every M, both dtypes. O projections of all three models, Qwen2-7B QKV (which has
// a bias), odd N and K not a multiple of the K tile (ragged last tile, ragged last row block,
// split K over uneven ranges), and a shape smaller than one tile.
const std::vector<Shape> kMediumShapes = {
    {4096, 4096},  // Llama-2-7B / Llama-3-8B O
    {3584, 3584},  // Qwen2-7B O
    {4608, 3584},  // Qwen2-7B QKV (bias)
    {1000, 4104},  // odd N, K = 64 * 64 + 8
    {4097, 1000},  // N one past a row block, K = 15 * 64 + 40
    {17, 40},      // less than one tile each way
};

// Large shapes: a few M each (the CPU reference and the 100M-element weights are the cost).
const std::vector<Shape> kLargeShapes = {
    {12288, 4096}, {22016, 4096}, {11008, 4096}, {4096, 11008},  // Llama-2-7B QKV, gate+up, FFN1, FFN2
    {6144, 4096},  {28672, 4096}, {4096, 14336},                 // Llama-3-8B QKV, gate+up, down
    {37888, 3584}, {3584, 18944},                                // Qwen2-7B gate+up, down
};

TEST(GpuFlatGemm, MediumShapesEveryMFp16) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 1;
  for (const Shape& s : kMediumShapes) check_shape<__half>(s.N, s.K, kAllM, seed++);
}

TEST(GpuFlatGemm, MediumShapesEveryMBf16) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 100;
  for (const Shape& s : kMediumShapes) check_shape<__nv_bfloat16>(s.N, s.K, kAllM, seed++, Epilogue::kBias);
}

TEST(GpuFlatGemm, LargeShapesFp16) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 200;
  for (const Shape& s : kLargeShapes) check_shape<__half>(s.N, s.K, {1, 16, 64}, seed++, Epilogue::kResidual);
}

TEST(GpuFlatGemm, LargeShapesBf16) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 300;
  for (const Shape& s : kLargeShapes) check_shape<__nv_bfloat16>(s.N, s.K, {2, 31, 64}, seed++, Epilogue::kF32Out);
}

// kAuto takes the streamed mainloop up to M = 16; the pipelined one must stay right there too
// (benchmarks compare them, and FlatGemmMainloop::kPipelined can be forced).
TEST(GpuFlatGemm, PipelinedMainloopAtSmallM) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 400;
  for (const Shape& s : kMediumShapes) {
    check_shape<__half>(s.N, s.K, {1, 3, 8, 9, 16}, seed++, Epilogue::kNone, cuda::FlatGemmMainloop::kPipelined);
    check_shape<__nv_bfloat16>(s.N, s.K, {2, 16}, seed++, Epilogue::kResidual, cuda::FlatGemmMainloop::kPipelined);
  }
}

// Split K forced on the streamed mainloop (the cluster end: partials through distributed shared
// memory, the tokens shared out among the ranks) and on the pipelined one: every epilogue, both
// n-tile variants, ragged N and K, uneven step ranges (K = 4104 is 9 streamed steps: 2 splits of
// 4 and 5, 8 splits of 1-2), more splits than steps (K = 1000: 2 steps, clamped), and the whole
// cluster size.
TEST(GpuFlatGemm, ForcedSplitsMatchCpu) {
  FDPP_REQUIRE_GPU();
  uint32_t seed = 500;
  const std::vector<Shape> shapes = {{4096, 4096}, {1000, 4104}, {4097, 1000}, {17, 40}};
  for (const Shape& s : shapes)
    for (int splits : {2, 3, 8}) {
      check_shape<__half>(s.N, s.K, {1, 3, 8, 9, 16}, seed++, static_cast<Epilogue>(splits % 3),
                          cuda::FlatGemmMainloop::kStreamed, splits);
      check_shape<__nv_bfloat16>(s.N, s.K, {2, 16}, seed++, Epilogue::kResidual, cuda::FlatGemmMainloop::kStreamed,
                                 splits);
      if (::testing::Test::HasFatalFailure()) return;
    }
  for (const Shape& s : shapes) {  // pipelined: its policy's splits are tested above, forced ones here
    check_shape<__half>(s.N, s.K, {1, 9, 33, 64}, seed++, Epilogue::kBias, cuda::FlatGemmMainloop::kPipelined, 2);
    check_shape<__half>(s.N, s.K, {16, 64}, seed++, Epilogue::kF32Out, cuda::FlatGemmMainloop::kPipelined, 1);
  }
}

// The RMSNorm prologue of the streamed mainloop, against cpu::rmsnorm then cpu::linear: split
// K (the sums of squares meet across the cluster like the products), ragged N and K, both
// n-tile variants.
TEST(GpuFlatGemm, NormPrologueMatchesCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(12);
  auto launch = [](const auto& p) {
    EXPECT_TRUE(cuda::flat_gemm_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight));
    return cuda::launch_flat_gemm(p, nullptr);
  };
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{12288, 4096}, {4096, 4096}, {1000, 4104}, {17, 40}})
    for (int64_t M : {1, 3, 8, 9, 16}) {
      test::check_norm_prologue_run<__half, cuda::FlatGemmParams<__half>>(n, k, M, M == 3, true, rng, launch);
      test::check_norm_prologue_run<__nv_bfloat16, cuda::FlatGemmParams<__nv_bfloat16>>(n, k, M, M == 9, true, rng,
                                                                                           launch);
    }
  // With K split over a cluster: the sums of squares meet across the ranks like the products.
  for (int splits : {2, 4})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{4096, 4096}, {1000, 4104}})
      for (int64_t M : {1, 8, 16}) {
        auto split_launch = [&](const auto& p) {
          auto q = p;
          q.splits = splits;
          return launch(q);
        };
        test::check_norm_prologue_run<__half, cuda::FlatGemmParams<__half>>(n, k, M, M == 8, true, rng, split_launch);
      }
}

// The scale-only norm (FlatGemmParams::norm_scale_only: the norm weight folded into w): the sums
// of squares and 1/rms without touching norm_weight, against cpu::rmsnorm with a unit weight. The
// device's norm weight stays random, so a kernel that read it would fail. Plain and gated
// epilogues, one split and forced splits, both n-tile variants, ragged N and K, both dtypes.
template <typename T>
void check_scale_only_norm(int64_t n, int64_t k, int64_t M, bool gated, int splits, std::mt19937& rng) {
  SCOPED_TRACE("scale-only norm [" + std::to_string(n) + ", " + std::to_string(k) + "] M=" + std::to_string(M) +
               (gated ? " gated" : "") + " splits " + std::to_string(splits));
  test::NormedLinearOperands<T> ops(M, n, k, 3.0f, 0.5f, rng);
  auto p = ops.template params<cuda::FlatGemmParams<T>>(true, true, false);
  p.norm_scale_only = true;
  p.gated_silu = gated;
  p.bias = gated ? nullptr : p.bias;
  p.splits = splits;
  p.mainloop = cuda::FlatGemmMainloop::kStreamed;
  ASSERT_TRUE(cuda::flat_gemm_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight));
  const Status st = cuda::launch_flat_gemm(p, nullptr);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::fill(ops.g.host.begin(), ops.g.host.end(), 1.0f);  // the reference's weight only
  const std::vector<float> products = ops.reference(!gated, true);
  const std::vector<double> want =
      gated ? test::gated_silu_reference(products, M, n) : std::vector<double>(products.begin(), products.end());
  std::vector<float> got = ops.download(false);
  got.resize(want.size());
  ASSERT_EQ(std::count_if(got.begin(), got.end(), [](float v) { return std::isnan(v); }), 0) << "outputs left poisoned";
  EXPECT_LT(test::scaled_max_error(got, want), test::linear_tol<T>());
}

TEST(GpuFlatGemm, ScaleOnlyNormMatchesCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(14);
  for (int splits : {1, 2})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{22016, 4096}, {4096, 4096}, {1030, 4104}, {18, 40}})
      for (int64_t M : {1, 8, 9, 16}) {
        check_scale_only_norm<__half>(n, k, M, n % 4 != 0 || M == 9, splits, rng);
        check_scale_only_norm<__nv_bfloat16>(n, k, M, n == 22016, splits, rng);
      }
}

// The gated SiLU epilogue of the streamed kernel (interleaved gate/up rows, out [M, N / 2]): both
// n-tile variants, ragged N (a last row block of 6 rows: 3 pairs), the norm prologue, bias, fp32
// output, one split and forced splits (the pair's two rows meet across the cluster), both dtypes.
TEST(GpuFlatGemm, GatedSiluEpilogueMatchesCpu) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(13);
  int i = 0;
  for (int splits : {1, 2, 3})
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{22016, 4096}, {1030, 4104}, {18, 40}})
      for (int64_t M : {1, 3, 8, 9, 12, 16}) {
        ++i;
        auto launch = [splits](const auto& p) {
          auto q = p;
          q.splits = splits;
          q.mainloop = cuda::FlatGemmMainloop::kStreamed;
          return cuda::launch_flat_gemm(q, nullptr);
        };
        test::check_gated_silu_run<__half, cuda::FlatGemmParams<__half>>(n, k, M, i % 2 == 0, i % 3 == 0, i % 5 == 0,
                                                                         rng, launch);
        test::check_gated_silu_run<__nv_bfloat16, cuda::FlatGemmParams<__nv_bfloat16>>(n, k, M, i % 2 == 1, i % 3 == 1,
                                                                                       i % 5 == 1, rng, launch);
      }
}

// The deep weight ring (FlatGemmParams::weight_buffers = 3: three steps of weights per warp in
// registers, one-split launches) against the CPU: both n-tile variants, every epilogue, ragged N
// and K (K = 4104 is 9 steps, not a multiple of the 6-step unroll; K = 1000 is 2, fewer than the
// ring holds; K = 40 one), both dtypes and the gated epilogue. At M 9-16 the norm prologues have
// no deep variant: forcing one is refused, and the plan's own choice keeps two buffers (M 1-8 with
// the scale-only norm and the QKV epilogue: ScaleOnlyNormMatchesCpu and GpuQkvEpilogue, whose
// Llama-3-8B QKV grids take it). The ring adds the same terms in the same order as two buffers,
// so the outputs are the same bits. On a GPU with at least 128 SMs the plan takes it for
// Llama-3-8B's QKV [6144, 4096] (384 CTAs, 3 per SM).
TEST(GpuFlatGemm, DeepWeightRingMatchesCpu) {
  FDPP_REQUIRE_GPU();
  constexpr int kDeep = 3;
  uint32_t seed = 600;
  const std::vector<Shape> shapes = {{6144, 4096}, {1000, 4104}, {4097, 1000}, {17, 40}};
  for (const Shape& s : shapes) {
    check_shape<__half>(s.N, s.K, {1, 3, 8, 9, 12, 16}, seed++, static_cast<Epilogue>(seed % 3),
                        cuda::FlatGemmMainloop::kStreamed, 1, kDeep);
    check_shape<__nv_bfloat16>(s.N, s.K, {2, 7, 10, 16}, seed++, Epilogue::kResidual,
                               cuda::FlatGemmMainloop::kStreamed, 1, kDeep);
    if (::testing::Test::HasFatalFailure()) return;
  }
  std::mt19937 rng(15);
  auto deep_launch = [](const auto& p) {
    auto q = p;
    q.splits = 1;
    q.weight_buffers = kDeep;
    return cuda::launch_flat_gemm(q, nullptr);
  };
  auto planned_launch = [](const auto& p) {  // a norm prologue: the plan keeps two buffers
    auto q = p;
    q.splits = 1;
    cuda::FlatGemmPlan plan;
    if (const Status st = cuda::plan_flat_gemm(q, &plan); !st.is_ok()) return st;
    if (plan.weight_buffers != 2) return Status{ErrorCode::kInternal, "a norm prologue took the deep ring"};
    q.weight_buffers = kDeep;
    if (cuda::launch_flat_gemm(q, nullptr).code() != ErrorCode::kUnsupported)
      return Status{ErrorCode::kInternal, "a forced deep ring with a norm prologue was not refused"};
    q.weight_buffers = 0;
    return cuda::launch_flat_gemm(q, nullptr);
  };
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{6144, 4096}, {1030, 4104}, {18, 40}})
    for (int64_t M : {9, 16}) {
      test::check_gated_silu_run<__half, cuda::FlatGemmParams<__half>>(n, k, M, false, n == 18, M == 9, rng,
                                                                       deep_launch);
      test::check_gated_silu_run<__nv_bfloat16, cuda::FlatGemmParams<__nv_bfloat16>>(n, k, M, true, M == 9, false,
                                                                                     rng, planned_launch);
      test::check_norm_prologue_run<__half, cuda::FlatGemmParams<__half>>(n, k, M, M == 9, true, rng,
                                                                          planned_launch);
    }

  // The same bits as two buffers, and the plan's choice on a large GPU.
  const Layer<__half> layer(6144, 4096, 16);
  for (int64_t M : {9, 16}) {
    test::DeviceArray<__half> x(static_cast<size_t>(M * layer.K)), a(static_cast<size_t>(M * layer.N)), b(a.size());
    x.fill_normal(rng, 1.0f);
    cuda::FlatGemmParams<__half> p;
    p.x = x.dev;
    p.w = layer.w.dev;
    p.M = M;
    p.N = layer.N;
    p.K = layer.K;
    p.out = a.dev;
    cuda::FlatGemmPlan plan;
    ASSERT_TRUE(cuda::plan_flat_gemm(p, &plan).is_ok());
    int sms = 0;
    ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
    const char* deep_switch = std::getenv("FDPP_FLAT_GEMM_DEEP");
    if (sms >= 128 && (deep_switch == nullptr || std::string(deep_switch) != "0")) {
      EXPECT_EQ(plan.splits, 1);
      EXPECT_EQ(plan.weight_buffers, kDeep) << "M=" << M << ": 384 CTAs fit at 3 per SM";
    }
    p.weight_buffers = 2;
    ASSERT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
    p.weight_buffers = kDeep;
    p.splits = 1;
    p.out = b.dev;
    ASSERT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
    expect_same_bits(a, b, "M=" + std::to_string(M) + ": three buffers differ from two");
  }
}

// Split K sums its partials in a fixed order, and the streamed kernel its warps' K pieces: two
// runs give the same bits. [1000, 4104] has 8 row blocks of the pipelined kernel, so any GPU with
// 16+ SMs splits K there (M > 16); the streamed kernel (M <= 16) is run with its plan's splits and
// with 3 forced.
TEST(GpuFlatGemm, SplitKIsDeterministic) {
  FDPP_REQUIRE_GPU();
  const Layer<__half> layer(1000, 4104, 7);
  std::mt19937 rng(7);
  for (auto [M, splits] : std::vector<std::pair<int64_t, int>>{{1, 0}, {16, 0}, {32, 0}, {64, 0}, {1, 3}, {16, 3}}) {
    test::DeviceArray<__half> x(static_cast<size_t>(M * layer.K)), a(static_cast<size_t>(M * layer.N)), b(a.size());
    x.fill_normal(rng, 1.0f);
    cuda::FlatGemmParams<__half> p;
    p.x = x.dev;
    p.w = layer.w.dev;
    p.bias = layer.bias.dev;
    p.M = M;
    p.N = layer.N;
    p.K = layer.K;
    p.out = a.dev;  // the plan validates the operands, outputs included
    p.splits = splits;
    cuda::FlatGemmPlan plan;
    ASSERT_TRUE(cuda::plan_flat_gemm(p, &plan).is_ok());
    int sms = 0;
    ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
    if (sms >= 16 && !plan.streamed) {
      EXPECT_GT(plan.splits, 1) << "M=" << M << ": the split-K path is not exercised";
    }
    p.out = a.dev;
    ASSERT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
    p.out = b.dev;
    ASSERT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
    expect_same_bits(a, b, "M=" + std::to_string(M) + ", splits " + std::to_string(plan.splits) + ": runs differ");
  }
}

// K = 0: nothing to multiply; out = bias + residual.
TEST(GpuFlatGemm, EmptyKGivesBiasPlusResidual) {
  FDPP_REQUIRE_GPU();
  std::mt19937 rng(9);
  const int64_t M = 3, N = 300;
  test::DeviceArray<__half> bias(N), res(static_cast<size_t>(M * N)), out(res.size());
  bias.fill_normal(rng, 1.0f);
  res.fill_normal(rng, 1.0f);
  out.poison();
  cuda::FlatGemmParams<__half> p;
  p.bias = bias.dev;
  p.residual = res.dev;
  p.out = out.dev;
  p.M = M;
  p.N = N;
  ASSERT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<double> want(res.size());
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) want[m * N + n] = bias.host[n] + res.host[m * N + n];
  EXPECT_LT(test::scaled_max_error(out.download(), want), test::linear_tol<__half>());
}

// What the flat GEMM refuses (the dispatcher routes these to the GEMV or cuBLASLt).
TEST(GpuFlatGemm, RejectsBadArguments) {
  FDPP_REQUIRE_GPU();
  test::DeviceArray<__half> x(65 * 72 + 8), w(16 * 72 + 8), out(65 * 16);
  cuda::FlatGemmParams<__half> p;
  p.x = x.dev;
  p.w = w.dev;
  p.out = out.dev;
  p.M = 2;
  p.N = 16;
  p.K = 64;
  EXPECT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());

  p.M = 65;  // past kFlatGemmMaxM
  Status st = cuda::launch_flat_gemm(p, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.message();
  p.M = 2;

  p.K = 60;  // K % 8 != 0
  st = cuda::launch_flat_gemm(p, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.message();
  EXPECT_NE(st.message().find("multiple of 8"), std::string::npos) << st.message();
  p.K = 64;

  p.x = x.dev + 1;  // 2 bytes past a 16-byte boundary
  st = cuda::launch_flat_gemm(p, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.message();
  EXPECT_NE(st.message().find("aligned"), std::string::npos) << st.message();
  p.x = x.dev;
  p.w = w.dev + 4;  // 8 bytes past
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.w = w.dev;

  cuda::FlatGemmPlan plan;
  EXPECT_EQ(cuda::plan_flat_gemm(p, &plan).code(), ErrorCode::kOk);
  p.K = 12;
  EXPECT_EQ(cuda::plan_flat_gemm(p, &plan).code(), ErrorCode::kInvalidArgument);  // same checks as launch
  p.K = 64;

  float* f32 = reinterpret_cast<float*>(out.dev);
  p.out_f32 = f32;  // both outputs
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.out = nullptr;
  p.out_f32 = nullptr;  // neither
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);

  p.out = x.dev + 8;  // overlaps x
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.out = out.dev;

  p.w = nullptr;  // missing weights
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.w = w.dev;

  p.splits = -1;  // split counts outside 0..kFlatGemmMaxSplits
  st = cuda::launch_flat_gemm(p, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.message();
  EXPECT_NE(st.message().find("splits"), std::string::npos) << st.message();
  p.splits = cuda::kFlatGemmMaxSplits + 1;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.splits = 0;

  p.weight_buffers = 4;  // neither 0, 2 nor the deep ring's 3
  st = cuda::launch_flat_gemm(p, nullptr);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.message();
  EXPECT_NE(st.message().find("weight_buffers"), std::string::npos) << st.message();
  p.weight_buffers = 3;  // the deep ring: one split, the streamed mainloop, no weighted norm
  EXPECT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());  // M = 2
  p.M = 16;
  EXPECT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
  {  // two steps of K, so that 2 splits are not clamped to one
    test::DeviceArray<__half> x2(16 * 1024), w2(16 * 1024);
    cuda::FlatGemmParams<__half> q = p;
    q.x = x2.dev;
    q.w = w2.dev;
    q.K = 1024;
    q.splits = 2;
    st = cuda::launch_flat_gemm(q, nullptr);
    EXPECT_EQ(st.code(), ErrorCode::kUnsupported) << st.message();
    EXPECT_NE(st.message().find("splits = 2"), std::string::npos) << st.message();
  }
  p.mainloop = cuda::FlatGemmMainloop::kPipelined;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.mainloop = cuda::FlatGemmMainloop::kAuto;
  p.weight_buffers = 0;
  p.M = 2;

  p.M = 17;  // the streamed mainloop forced past its largest M
  p.mainloop = cuda::FlatGemmMainloop::kStreamed;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kInvalidArgument);
  p.mainloop = cuda::FlatGemmMainloop::kAuto;

  // The norm prologue where no variant takes it: kUnsupported, which the dispatcher avoids by
  // asking flat_gemm_can_fuse_norm first.
  test::DeviceArray<__half> g(64);
  p.norm_weight = g.dev;
  EXPECT_FALSE(cuda::flat_gemm_can_fuse_norm(p.M, p.K, p.x, p.w, p.norm_weight));  // M = 17
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.M = 2;
  EXPECT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
  p.mainloop = cuda::FlatGemmMainloop::kPipelined;  // the pipelined mainloop has no prologue
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.mainloop = cuda::FlatGemmMainloop::kAuto;
  p.norm_weight = g.dev + 1;  // unaligned norm weight
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.norm_weight = nullptr;

  // The gated epilogue: the streamed mainloop only, an even N, no residual.
  p.gated_silu = true;
  p.M = 17;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.M = 2;
  p.mainloop = cuda::FlatGemmMainloop::kPipelined;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.mainloop = cuda::FlatGemmMainloop::kAuto;
  p.N = 15;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.N = 16;
  p.residual = out.dev;
  EXPECT_EQ(cuda::launch_flat_gemm(p, nullptr).code(), ErrorCode::kUnsupported);
  p.residual = nullptr;
  EXPECT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
  p.gated_silu = false;

  p.M = 0;  // nothing to do
  EXPECT_TRUE(cuda::launch_flat_gemm(p, nullptr).is_ok());
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(cuda::flat_gemm_workspace_bytes(64, 4096, 4096), 0u);
}

}  // namespace
}  // namespace fdpp

#include "backend/cuda/gemm/linear_tuner_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <memory>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemm/linear_dispatch.h"
#include "backend/cuda/pointwise/pointwise.cuh"
#include "fdpp/status.h"

namespace fdpp::cuda {
namespace {

// Weight copies rotate through at least this many bytes, > 5x the H100's 50 MB L2, so that HBM
// serves every weight byte as in a real forward pass.
constexpr size_t kRotationBytes = size_t{256} << 20;
// Launches per timed CUDA graph and timed replays (the median is kept).
constexpr int kLaunchesPerGraph = 12;
constexpr int kReplays = 5;
constexpr float kNormEps = 1e-5f;  // any eps: the norm's cost does not depend on it

struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) { check(cudaMalloc(&ptr, std::max<size_t>(bytes, 16)), "tuner buffer"); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

class CudaLinearTuner final : public LinearTuner {
 public:
  explicit CudaLinearTuner(DType dtype) : dtype_(dtype) {
    if (dtype_ != DType::kF16 && dtype_ != DType::kBF16)
      throw Error(ErrorCode::kInvalidArgument, fmt::format("fdpp tune: dtype must be F16 or BF16, not {}", dtype_name(dtype_)));
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    gpu_ = prop.name;
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
    dispatcher_ = std::make_unique<LinearDispatcher>(stream_, gpu_, LinearTable{});
  }
  ~CudaLinearTuner() override {
    dispatcher_.reset();
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
    cudaStreamDestroy(stream_);
  }

  std::string gpu_name() const override { return gpu_; }

  std::vector<LinearTiming> sweep(const LinearShape& shape, const std::vector<int64_t>& ms,
                                  const std::function<void(size_t)>& progress) override {
    const size_t elem = dtype_size(dtype_);
    const size_t w_bytes = static_cast<size_t>(shape.n * shape.k) * elem;
    const int copies = static_cast<int>(std::max<size_t>(2, (kRotationBytes + w_bytes - 1) / w_bytes));
    const int64_t max_m = ms.empty() ? 1 : *std::max_element(ms.begin(), ms.end());
    DeviceBuffer w(w_bytes * static_cast<size_t>(copies));
    DeviceBuffer x(static_cast<size_t>(max_m * shape.k) * elem);
    DeviceBuffer normed(static_cast<size_t>(max_m * shape.k) * elem);  // rmsnorm(x) * g when not fused
    DeviceBuffer norm_weight(static_cast<size_t>(shape.k) * elem);
    DeviceBuffer out(static_cast<size_t>(max_m * shape.n) * elem);
    DeviceBuffer act_buffer(static_cast<size_t>(max_m * (shape.n / 2)) * elem);  // silu(gate) * up
    fill(w.ptr, shape.n * shape.k * copies, 1, 0.02f);
    fill(x.ptr, max_m * shape.k, 2, 1.0f);
    fill(norm_weight.ptr, shape.k, 3, 1.0f);
    check(cudaStreamSynchronize(stream_), "tuner fill");
    const TensorView g = TensorView::contiguous(norm_weight.ptr, dtype_, {shape.k}, Device::kCuda);

    std::vector<LinearTiming> rows;
    for (size_t i = 0; i < ms.size(); ++i) {
      const int64_t m = ms[i];
      LinearTiming t;
      t.m = m;
      TensorView xv = TensorView::contiguous(x.ptr, dtype_, {m, shape.k}, Device::kCuda);
      TensorView hv = TensorView::contiguous(normed.ptr, dtype_, {m, shape.k}, Device::kCuda);
      TensorView ov = TensorView::contiguous(out.ptr, dtype_, {m, shape.n}, Device::kCuda);
      auto weight = [&](int c) {
        return TensorView::contiguous(static_cast<char*>(w.ptr) + static_cast<size_t>(c) * w_bytes, dtype_,
                                      {shape.n, shape.k}, Device::kCuda);
      };
      std::array<double*, 3> slot = {&t.gemv_us, &t.flat_us, &t.cublas_us};
      for (LinearImpl impl : {LinearImpl::kGemv, LinearImpl::kFlatGemm, LinearImpl::kCublasLt}) {
        if (!dispatcher_->can_run(impl, xv, weight(0))) continue;
        // A normed input costs what the forward pass pays: the norm inside the kernel where this
        // implementation takes it at this M; else, for a folded norm of few rows, its row scale in
        // the consumer (qkv_store is not timed here; the gate/up's silu_mul is, with the scale);
        // else a separate RMSNorm launch before it.
        const LinearFusion norm_fusion{g, kNormEps, false, shape.folded_norm};
        const bool fused = shape.normed_input && dispatcher_->can_fuse_norm(impl, xv, weight(0), norm_fusion);
        const bool deferred = shape.normed_input && !fused && shape.folded_norm && shape.deferrable_norm &&
                              m <= CudaBackend::kDeferredNormMaxRows;
        const bool separate = shape.normed_input && !fused && !deferred;
        // The gate/up projection: the kernel's gated epilogue where it has one, else the products
        // and the interleaved silu_mul (CudaBackend::gate_up_silu).
        const bool gated = shape.gated_silu && dispatcher_->can_gate_silu(impl, xv, weight(0));
        const bool silu_after = shape.gated_silu && !gated;
        TensorView act = TensorView::contiguous(act_buffer.ptr, dtype_, {m, shape.n / 2}, Device::kCuda);
        *slot[static_cast<size_t>(impl)] = time_graph([&](int launch) {
          const TensorView wv = weight(launch % copies);
          if (separate) rmsnorm(xv, g, hv);
          const TensorView& in = separate ? hv : xv;
          const LinearFusion norm = fused ? norm_fusion : LinearFusion{};
          if (gated) {
            dispatcher_->run_gated_silu_with(impl, in, wv, norm, act);
            return;
          }
          dispatcher_->run_with(impl, in, wv, TensorView{}, norm, ov);
          if (silu_after) silu_mul_interleaved(ov, act, deferred ? xv : TensorView{});
        });
      }
      rows.push_back(t);
      if (progress) progress(i);
    }
    return rows;
  }

 private:
  // h = rmsnorm(x) * g, as CudaBackend::rmsnorm launches it.
  void rmsnorm(const TensorView& x, const TensorView& g, const TensorView& h) {
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      const RmsNormParams<T> p{static_cast<T*>(x.data), nullptr, static_cast<const T*>(g.data), static_cast<T*>(h.data),
                               x.dim(0), x.dim(1), kNormEps};
      throw_if_error(launch_rmsnorm(p, stream_));
    };
    if (dtype_ == DType::kF16) launch(__half{});
    else launch(__nv_bfloat16{});
  }

  // act [M, F] = silu(gate) * up of interleaved products [M, 2F], as CudaBackend::gate_up_silu
  // launches it after cuBLASLt; each row scaled by its inv rms of scale_rows [M, K] first where set
  // (a deferred norm).
  void silu_mul_interleaved(const TensorView& products, const TensorView& act, const TensorView& scale_rows) {
    auto launch = [&](auto tag) {
      using T = decltype(tag);
      SiluMulParams<T> p{static_cast<const T*>(products.data), static_cast<T*>(act.data), act.dim(0),
                         act.dim(1), true, {}};
      if (!scale_rows.empty()) p.scale = {static_cast<const T*>(scale_rows.data), scale_rows.dim(1), kNormEps};
      throw_if_error(launch_silu_mul(p, stream_));
    };
    if (dtype_ == DType::kF16) launch(__half{});
    else launch(__nv_bfloat16{});
  }

  void fill(void* p, int64_t n, uint64_t seed, float stddev) {
    if (dtype_ == DType::kF16) throw_if_error(launch_fill_random(static_cast<__half*>(p), n, seed, 0.0f, stddev, stream_));
    else throw_if_error(launch_fill_random(static_cast<__nv_bfloat16*>(p), n, seed, 0.0f, stddev, stream_));
  }

  // µs per launch: kLaunchesPerGraph launches captured in one graph (no host cost between them,
  // as in a captured decode step), replayed kReplays times; the median replay.
  template <typename Launch>
  double time_graph(Launch&& launch) {
    for (int i = 0; i < 2; ++i) launch(i);  // warm-up outside the graph (cuBLASLt picks its algorithm)
    check(cudaStreamSynchronize(stream_), "tuner warm-up");
    cudaGraph_t graph = nullptr;
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "begin capture");
    for (int i = 0; i < kLaunchesPerGraph; ++i) launch(i);
    check(cudaStreamEndCapture(stream_, &graph), "end capture");
    cudaGraphExec_t exec = nullptr;
    check(cudaGraphInstantiate(&exec, graph, 0), "graph instantiate");
    check(cudaGraphLaunch(exec, stream_), "graph launch");
    std::vector<double> us;
    for (int r = 0; r < kReplays; ++r) {
      check(cudaEventRecord(start_, stream_), "event");
      check(cudaGraphLaunch(exec, stream_), "graph launch");
      check(cudaEventRecord(stop_, stream_), "event");
      check(cudaEventSynchronize(stop_), "event sync");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, start_, stop_), "event time");
      us.push_back(ms * 1e3 / kLaunchesPerGraph);
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
  }

  DType dtype_;
  std::string gpu_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  std::unique_ptr<LinearDispatcher> dispatcher_;
};

}  // namespace

std::unique_ptr<LinearTuner> make_linear_tuner(DType dtype) { return std::make_unique<CudaLinearTuner>(dtype); }

}  // namespace fdpp::cuda

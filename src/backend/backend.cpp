#include "backend/backend.h"

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "fdpp/status.h"
#ifdef FDPP_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_device.h"
#endif

namespace fdpp {

void Backend::linear_fused(const TensorView& x, const TensorView& w, const TensorView& bias,
                           const LinearFusion& fusion, TensorView& out, TensorView& scratch) {
  const bool norm = !fusion.norm_weight.empty();
  if (norm && fusion.accumulate)
    throw Error(ErrorCode::kInternal, "linear_fused: a norm before and an accumulate after one product");
  if (norm) {
    rmsnorm(x, fusion.norm_weight, fusion.eps, scratch);
    linear(scratch, w, bias, out);
  } else if (fusion.accumulate) {
    linear(x, w, bias, scratch);
    add(out, scratch);
  } else {
    linear(x, w, bias, out);
  }
}

void Backend::gate_up_silu(const TensorView& x, const TensorView& w, const LinearFusion& norm, TensorView& act,
                           TensorView& normed, TensorView& gate_up) {
  if (norm.accumulate) throw Error(ErrorCode::kInternal, "gate_up_silu: no residual add into the gate/up product");
  if (interleaves_gate_up())
    throw Error(ErrorCode::kInternal, "gate_up_silu: a backend with interleaved gate/up rows runs its own");
  linear_fused(x, w, TensorView{}, norm, gate_up, normed);
  silu_mul(gate_up, act);
}

bool Backend::start_kernel_timeline(std::string* why_not) {
  if (why_not != nullptr) *why_not = fmt::format("the {} backend records no kernel timeline", name());
  return false;
}

void Backend::take_sampled(std::span<int32_t> tokens) {
  throw Error(ErrorCode::kInternal, fmt::format("backend {} queued no sample to take", name()));
}

void Backend::fold_norm_weight(const TensorView& w, const TensorView& norm) {
  throw Error(ErrorCode::kInternal, fmt::format("backend {} does not fold norm weights", name()));
}

void Backend::qkv_projection(int64_t layer, const TensorView& x, const TensorView& wqkv, const TensorView& bqkv,
                             const LinearFusion& norm, const TensorView& inv_freq, TensorView& qkv,
                             TensorView& normed, TensorView& q_out) {
  linear_fused(x, wqkv, bqkv, norm, qkv, normed);
  qkv_rope_store(layer, qkv, inv_freq, q_out);
}

BackendKind parse_backend_kind(const std::string& name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("unknown backend '{}': expected auto, cpu or cuda", name));
}

DType parse_activation_dtype(const std::string& name, DType weight_dtype) {
  if (name == "auto") return weight_dtype == DType::kBF16 ? DType::kBF16 : DType::kF16;
  if (name == "f16" || name == "fp16" || name == "float16") return DType::kF16;
  if (name == "bf16" || name == "bfloat16") return DType::kBF16;
  throw Error(ErrorCode::kInvalidArgument, fmt::format("unknown --dtype '{}': expected auto, f16 or bf16", name));
}

std::unique_ptr<Backend> create_backend(BackendKind kind, DType activations) {
#ifdef FDPP_HAVE_CUDA
  const int devices = cuda::device_count();
  if (kind == BackendKind::kCuda && devices == 0)
    throw Error(ErrorCode::kUnsupported, "--backend cuda: no CUDA device is visible (driver missing or no GPU)");
  if (kind == BackendKind::kCuda || (kind == BackendKind::kAuto && devices > 0)) {
    return std::make_unique<cuda::CudaBackend>(0, activations);
  }
#else
  (void)activations;
  if (kind == BackendKind::kCuda)
    throw Error(ErrorCode::kUnsupported,
                "this fdpp was built without CUDA (FDPP_CUDA=OFF or no nvcc); use --backend cpu");
#endif
  return std::make_unique<CpuBackend>();
}

}  // namespace fdpp

#include "backend/backend.h"

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "fdpp/status.h"
#ifdef FDPP_HAVE_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_device.h"
#endif

namespace fdpp {

BackendKind parse_backend_kind(const std::string& name) {
  if (name == "auto") return BackendKind::kAuto;
  if (name == "cpu") return BackendKind::kCpu;
  if (name == "cuda") return BackendKind::kCuda;
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("unknown backend '{}': expected auto, cpu or cuda", name));
}

std::unique_ptr<Backend> create_backend(BackendKind kind, DType weight_dtype) {
#ifdef FDPP_HAVE_CUDA
  const int devices = cuda::device_count();
  if (kind == BackendKind::kCuda && devices == 0)
    throw Error(ErrorCode::kUnsupported, "--backend cuda: no CUDA device is visible (driver missing or no GPU)");
  if (kind == BackendKind::kCuda || (kind == BackendKind::kAuto && devices > 0)) {
    // bf16 checkpoints stay bf16; F16 and F32 checkpoints run in fp16.
    const DType activations = weight_dtype == DType::kBF16 ? DType::kBF16 : DType::kF16;
    return std::make_unique<cuda::CudaBackend>(0, activations);
  }
#else
  (void)weight_dtype;
  if (kind == BackendKind::kCuda)
    throw Error(ErrorCode::kUnsupported,
                "this fdpp was built without CUDA (FDPP_CUDA=OFF or no nvcc); use --backend cpu");
#endif
  return std::make_unique<CpuBackend>();
}

}  // namespace fdpp

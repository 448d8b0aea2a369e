#include "backend/backend.h"

#include <fmt/format.h>

#include "backend/cpu/cpu_backend.h"
#include "fdpp/status.h"
#ifdef FDPP_HAVE_CUDA
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

std::unique_ptr<Backend> create_backend(BackendKind kind) {
  if (kind == BackendKind::kCuda) {
#ifdef FDPP_HAVE_CUDA
    const int devices = cuda::device_count();
    throw Error(ErrorCode::kUnsupported,
                fmt::format("the CUDA model runner is not part of this build yet ({} CUDA device(s) "
                            "seen); use --backend cpu", devices));
#else
    throw Error(ErrorCode::kUnsupported,
                "this fdpp was built without CUDA (FDPP_CUDA=OFF or no nvcc); use --backend cpu");
#endif
  }
  return std::make_unique<CpuBackend>();
}

}  // namespace fdpp

#include "backend/cuda/tensor_map.h"

#include <cuda_runtime.h>
#include <cudaTypedefs.h>

namespace fdpp::cuda {
namespace {

// Looked up once per process; null where the driver is older than CUDA 12.0 or absent.
PFN_cuTensorMapEncodeTiled_v12000 encode_entry_point() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* entry = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &entry, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess) {
      (void)cudaGetLastError();
      return static_cast<PFN_cuTensorMapEncodeTiled_v12000>(nullptr);
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(entry);
  }();
  return fn;
}

}  // namespace

bool tensor_maps_supported() { return encode_entry_point() != nullptr; }

bool encode_swizzled_tile_map(const TileMapView& view, CUtensorMap* out) {
  const PFN_cuTensorMapEncodeTiled_v12000 encode = encode_entry_point();
  if (encode == nullptr || view.box[0] * 2 != 128) return false;
  const cuuint64_t dims[3] = {view.dims[0], view.dims[1], view.dims[2]};
  const cuuint64_t strides[2] = {view.strides[0], view.strides[1]};
  const cuuint32_t box[3] = {view.box[0], view.box[1], view.box[2]};
  const cuuint32_t element_strides[3] = {1, 1, 1};
  return encode(out, CU_TENSOR_MAP_DATA_TYPE_UINT16, 3, const_cast<void*>(view.base), dims, strides, box,
                element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace fdpp::cuda

// Tensor maps for the TMA unit's tiled copies (cp.async.bulk.tensor, bulk_copy.cuh), encoded on
// the host by the driver's cuTensorMapEncodeTiled. The runtime's entry-point query reaches it, so
// nothing links libcuda directly.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace fdpp::cuda {

// A strided 3-D view of 2-byte elements and the box one copy moves; index 0 is the innermost
// (contiguous) dimension.
struct TileMapView {
  const void* base = nullptr;  // 16-byte aligned
  uint64_t dims[3] = {};       // elements along each dimension
  uint64_t strides[2] = {};    // bytes from one index of dimension 1 (then 2) to the next; multiples of 16
  uint32_t box[3] = {};        // elements per copy along each dimension; box[0] * 2 bytes must be 128
};

// Whether this process can encode tensor maps (the driver exposes the entry point).
bool tensor_maps_supported();

// Encodes `view` with the 128-byte swizzle: a box row of 128 bytes lands in shared memory with
// its 16-byte chunk c at c ^ (row % 8), rows 128 bytes apart (the destination is 1024-byte
// aligned). L2 fetches 256 bytes around each miss. False when the driver rejects the view or
// lacks the entry point.
bool encode_swizzled_tile_map(const TileMapView& view, CUtensorMap* out);

}  // namespace fdpp::cuda

// TensorView: a non-owning view of a strided n-d array (up to 4 dims) on the host or a device.
// Shapes are outermost first: a weight [N, K] has shape {N, K} and stride {K, 1} (row-major).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/dtype.h"

namespace fdpp {

enum class Device : uint8_t { kCpu, kCuda };

struct TensorView {
  static constexpr int kMaxRank = 4;

  void* data = nullptr;
  DType dtype = DType::kF32;
  Device device = Device::kCpu;
  int rank = 0;
  std::array<int64_t, kMaxRank> shape{};    // elements per dim
  std::array<int64_t, kMaxRank> stride{};   // elements between neighbours along each dim

  // A contiguous (row-major) view.
  static TensorView contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                               Device device = Device::kCpu);

  bool empty() const { return data == nullptr; }
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  int64_t numel() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool is_contiguous() const;
  std::string shape_string() const;  // "[512, 64]"

  // The same contiguous data seen with another shape of equal element count.
  TensorView reshape(std::initializer_list<int64_t> new_shape) const;
  // The first n entries along dim 0 (a contiguous prefix of a buffer sized for the maximum).
  TensorView first_rows(int64_t n) const;

  // Row r of a rank-2 contiguous view, as a pointer to its first element.
  const void* row(int64_t r) const {
    return static_cast<const char*>(data) + static_cast<size_t>(r * stride[0]) * dtype_size(dtype);
  }
};

}  // namespace fdpp

#include "core/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

#include "fdpp/status.h"

namespace fdpp {

TensorView TensorView::contiguous(void* data, DType dtype, std::initializer_list<int64_t> shape,
                                  Device device) {
  TensorView t;
  t.data = data;
  t.dtype = dtype;
  t.device = device;
  t.rank = static_cast<int>(shape.size());
  int i = 0;
  for (int64_t d : shape) t.shape[static_cast<size_t>(i++)] = d;
  int64_t s = 1;
  for (int d = t.rank - 1; d >= 0; --d) {
    t.stride[static_cast<size_t>(d)] = s;
    s *= t.shape[static_cast<size_t>(d)];
  }
  return t;
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) n *= shape[static_cast<size_t>(d)];
  return rank == 0 ? 0 : n;
}

bool TensorView::is_contiguous() const {
  int64_t s = 1;
  for (int d = rank - 1; d >= 0; --d) {
    if (shape[static_cast<size_t>(d)] != 1 && stride[static_cast<size_t>(d)] != s) return false;
    s *= shape[static_cast<size_t>(d)];
  }
  return true;
}

TensorView TensorView::reshape(std::initializer_list<int64_t> new_shape) const {
  TensorView t = contiguous(data, dtype, new_shape, device);
  if (!is_contiguous() || t.numel() != numel())
    throw Error(ErrorCode::kInternal, fmt::format("cannot reshape {} to {}", shape_string(), t.shape_string()));
  return t;
}

TensorView TensorView::first_rows(int64_t n) const {
  if (rank == 0 || n > shape[0])
    throw Error(ErrorCode::kInternal, fmt::format("first_rows({}) of {}", n, shape_string()));
  TensorView t = *this;
  t.shape[0] = n;
  return t;
}

std::string TensorView::shape_string() const {
  std::vector<int64_t> dims(shape.begin(), shape.begin() + rank);
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

}  // namespace fdpp

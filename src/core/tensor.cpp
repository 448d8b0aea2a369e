#include "core/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <vector>

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

std::string TensorView::shape_string() const {
  std::vector<int64_t> dims(shape.begin(), shape.begin() + rank);
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

}  // namespace fdpp

// The DType of a CUDA activation type (__half, __nv_bfloat16): host code that holds a typed
// kernel argument checks it against a TensorView's dtype. Host-includable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "core/dtype.h"

namespace fdpp::cuda {

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<__half>() { return DType::kF16; }
template <> constexpr DType dtype_of<__nv_bfloat16>() { return DType::kBF16; }

}  // namespace fdpp::cuda

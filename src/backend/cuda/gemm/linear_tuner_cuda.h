// The CUDA half of backend/linear_tuner.h.
#pragma once

#include <memory>

#include "backend/linear_tuner.h"

namespace fdpp::cuda {

std::unique_ptr<LinearTuner> make_linear_tuner(DType dtype);

}  // namespace fdpp::cuda

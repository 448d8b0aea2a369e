// CUDA device discovery, usable from host-only code (no CUDA headers here).
#pragma once

#include <string>

namespace fdpp::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no device.
int device_count();
// "NVIDIA H100 80GB HBM3", or an empty string when the device does not exist.
std::string device_name(int device);

}  // namespace fdpp::cuda

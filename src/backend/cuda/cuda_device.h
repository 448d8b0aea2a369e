// CUDA device discovery, usable from host-only code (no CUDA headers here).
#pragma once

#include <string>

namespace fdpp::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no device.
int device_count();
// "NVIDIA H100 80GB HBM3", or an empty string when the device does not exist.
std::string device_name(int device);

// Whether kernel launches on the current device carry the programmatic-dependent-launch attribute
// (launch.cuh): compute capability >= 9.0, and neither FDPP_PDL=0 nor set_programmatic_launch(false).
bool programmatic_launch_enabled();
// Process-wide switch over the FDPP_PDL default, for launches made and graphs captured afterwards
// (benchmarks measure what PDL buys within one run; tests compare the two).
void set_programmatic_launch(bool enabled);

// Whether the current device has the bulk-copy engine (cp.async.bulk, compute capability >= 9.0;
// bulk_copy.cuh). Asked once per process.
bool bulk_copy_supported();

}  // namespace fdpp::cuda

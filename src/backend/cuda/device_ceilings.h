// Measured read-bandwidth ceilings of the GPUs we report against (DESIGN.md section 2: read-only
// streaming of 4 GiB fp16 on the lent H100 80GB HBM3, 2026-11-23: 3057 GB/s). The speed summary
// uses the rounded 3.0 TB/s the project quotes everywhere.
#pragma once

#include <string_view>

namespace fdpp::cuda {

inline double read_bandwidth_ceiling(std::string_view device_name) {
  if (device_name.find("H100") != std::string_view::npos && device_name.find("HBM3") != std::string_view::npos)
    return 3.0e12;
  return 0.0;  // not measured: the report says so rather than guess
}

}  // namespace fdpp::cuda

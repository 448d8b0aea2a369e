// What every GPU benchmark here shares: a CUDA call check that stops the run with the file and
// line, and the read-bandwidth ceiling figures are quoted against (DESIGN.md section 2).
#pragma once

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <cstdlib>

#define BENCH_CHECK(x)                                                                \
  do {                                                                                \
    cudaError_t e = (x);                                                              \
    if (e != cudaSuccess) {                                                           \
      fmt::print(stderr, "{}:{}: {}\n", __FILE__, __LINE__, cudaGetErrorString(e));   \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

namespace fdpp::bench {
inline constexpr double kReadCeiling = 3.0e12;  // bytes/s: the H100's measured read streaming, rounded
}  // namespace fdpp::bench

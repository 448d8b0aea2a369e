// Internal helper of the CPU reference ops: the fp32 dot product every op that reduces over a
// vector uses, so the summation order is written down once.
#pragma once

#include <cstdint>

namespace fdpp::cpu::detail {

// Below this many multiply-adds an op runs on one thread: waking a thread team costs more than
// the work, and much more when the cores are shared (ctest -j, a busy server).
inline constexpr int64_t kParallelMinWork = int64_t{1} << 16;


// sum_i a[i] * b[i] in fp32 with a fixed order: eight interleaved partial sums (lane l takes
// i = l, l+8, l+16, ...), combined pairwise, then the tail (n % 8 elements) added in order.
// The order depends only on n, so results do not depend on the thread count; the eight lanes
// let the compiler vectorise without -ffast-math and make the error grow slower than one chain.
inline float dot_f32(const float* a, const float* b, int64_t n) {
  float acc[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += a[i + l] * b[i + l];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  return (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) +
         tail;
}

}  // namespace fdpp::cpu::detail

// Fills device buffers with hashed pseudo-random values in [-2, 2): benchmarks never time zeros.
#pragma once

#include <cstddef>
#include <cstdint>

void fill_random_half(void* device_ptr, size_t n, uint32_t seed);  // n __half elements

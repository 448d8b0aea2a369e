#include <cuda_fp16.h>

#include "random_fill.h"

namespace {

__global__ void fill_random_kernel(__half* p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    p[i] = __float2half((static_cast<float>(h & 0xffff) / 65535.0f - 0.5f) * 4.0f);
  }
}

}  // namespace

void fill_random_half(void* device_ptr, size_t n, uint32_t seed) {
  fill_random_kernel<<<4096, 256>>>(static_cast<__half*>(device_ptr), n, seed);
}

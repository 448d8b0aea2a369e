#include "runtime/kv_blocks.h"

#include <fmt/format.h>

#include "fdpp/status.h"

namespace fdpp {

KvBlockAllocator::KvBlockAllocator(int64_t num_blocks, int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  if (num_blocks <= 0 || block_size <= 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("KV cache: need a positive block count and size, found {} blocks of {}",
                            num_blocks, block_size));
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

bool KvBlockAllocator::allocate(int64_t n, std::vector<int32_t>& table) {
  if (n > free_blocks()) return false;
  for (int64_t i = 0; i < n; ++i) {
    table.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockAllocator::release(std::vector<int32_t>& table) {
  for (int32_t b : table) free_.push_back(b);
  table.clear();
}

}  // namespace fdpp

// KvBlockAllocator: hands out the fixed-size blocks of the paged KV cache. Host-side bookkeeping
// only; the cache memory itself belongs to the backend.
#pragma once

#include <cstdint>
#include <vector>

namespace fdpp {

class KvBlockAllocator {
 public:
  KvBlockAllocator(int64_t num_blocks, int64_t block_size);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return num_blocks_ - free_blocks(); }
  int64_t blocks_for_tokens(int64_t tokens) const { return (tokens + block_size_ - 1) / block_size_; }

  // Appends n block ids to `table`; returns false (and changes nothing) when fewer are free.
  bool allocate(int64_t n, std::vector<int32_t>& table);
  // Returns every block of `table` to the pool and clears it.
  void release(std::vector<int32_t>& table);

 private:
  int64_t num_blocks_;
  int64_t block_size_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
};

}  // namespace fdpp

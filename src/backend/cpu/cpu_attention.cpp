// CPU reference ops over the paged KV cache: kv_write and causal GQA attention.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "backend/cpu/cpu_dot.h"
#include "backend/cpu/cpu_ops.h"
#include "fdpp/status.h"

namespace fdpp::cpu {

using detail::dot_f32;
using detail::kParallelMinWork;

namespace {

void check_cache(const PagedKv& kv, const char* op) {
  if (kv.k == nullptr || kv.v == nullptr || kv.num_blocks <= 0 || kv.block_size <= 0 ||
      kv.num_kv_heads <= 0 || kv.head_dim <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: bad paged KV cache (num_blocks {}, block_size {}, kv heads {}, "
                            "head_dim {})",
                            op, kv.num_blocks, kv.block_size, kv.num_kv_heads, kv.head_dim));
  }
}

int64_t num_sequences(const AttentionBatch& batch, const char* op) {
  if (batch.positions.size() != batch.token_seq.size()) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: {} positions but {} token_seq entries", op,
                            batch.positions.size(), batch.token_seq.size()));
  }
  if (batch.max_blocks_per_seq <= 0 ||
      batch.block_tables.size() % static_cast<size_t>(batch.max_blocks_per_seq) != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: block_tables has {} entries, not a multiple of "
                            "max_blocks_per_seq {}",
                            op, batch.block_tables.size(), batch.max_blocks_per_seq));
  }
  return static_cast<int64_t>(batch.block_tables.size()) / batch.max_blocks_per_seq;
}

// The cache block holding slot `pos` of sequence `seq`, checked against the cache.
int32_t block_of(const PagedKv& kv, const AttentionBatch& batch, int64_t seq, int64_t pos,
                 const char* op) {
  const int32_t block = batch.block_tables[static_cast<size_t>(
      seq * batch.max_blocks_per_seq + pos / kv.block_size)];
  if (block < 0 || block >= kv.num_blocks) {
    throw Error(ErrorCode::kOutOfRange,
                fmt::format("{}: sequence {} maps slot {} to block {}, outside the cache's [0, {})",
                            op, seq, pos, block, kv.num_blocks));
  }
  return block;
}

// Checks every token's sequence index and position. With all_slots, also every block that
// slots [0, position] of its sequence read (attention); otherwise only the written slot.
void check_tokens(const PagedKv& kv, const AttentionBatch& batch, bool all_slots, const char* op) {
  const int64_t S = num_sequences(batch, op);
  const int64_t capacity = static_cast<int64_t>(batch.max_blocks_per_seq) * kv.block_size;
  std::vector<int64_t> max_pos(static_cast<size_t>(S), -1);
  for (size_t t = 0; t < batch.positions.size(); ++t) {
    const int64_t seq = batch.token_seq[t];
    const int64_t pos = batch.positions[t];
    if (seq < 0 || seq >= S) {
      throw Error(ErrorCode::kOutOfRange,
                  fmt::format("{}: token {} belongs to sequence {}, but the block tables hold {}",
                              op, t, seq, S));
    }
    if (pos < 0 || pos >= capacity) {
      throw Error(ErrorCode::kOutOfRange,
                  fmt::format("{}: token {} has position {}, beyond the block table ({} blocks of "
                              "{} slots)",
                              op, t, pos, batch.max_blocks_per_seq, kv.block_size));
    }
    if (!all_slots) block_of(kv, batch, seq, pos, op);
    max_pos[static_cast<size_t>(seq)] = std::max(max_pos[static_cast<size_t>(seq)], pos);
  }
  if (!all_slots) return;
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t pos = 0; pos <= max_pos[static_cast<size_t>(s)]; pos += kv.block_size) {
      block_of(kv, batch, s, pos, op);
    }
  }
}

}  // namespace

void kv_write(const PagedKv& kv, const float* k, const float* v, const AttentionBatch& batch) {
  check_cache(kv, "kv_write");
  check_tokens(kv, batch, /*all_slots=*/false, "kv_write");
  const int64_t row = static_cast<int64_t>(kv.num_kv_heads) * kv.head_dim;  // floats per slot
  for (size_t t = 0; t < batch.positions.size(); ++t) {
    const int64_t pos = batch.positions[t];
    const int64_t block = block_of(kv, batch, batch.token_seq[t], pos, "kv_write");
    const int64_t slot = block * kv.block_size + pos % kv.block_size;
    std::memcpy(kv.k + slot * row, k + static_cast<int64_t>(t) * row, sizeof(float) * row);
    std::memcpy(kv.v + slot * row, v + static_cast<int64_t>(t) * row, sizeof(float) * row);
  }
}

void attention(const float* q, int64_t num_q_heads, const PagedKv& kv, const AttentionBatch& batch,
               float scale, float* out, Histogram* scores_seen) {
  check_cache(kv, "attention");
  if (num_q_heads <= 0 || num_q_heads % kv.num_kv_heads != 0) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("attention: {} query heads is not a multiple of {} KV heads",
                            num_q_heads, kv.num_kv_heads));
  }
  check_tokens(kv, batch, /*all_slots=*/true, "attention");

  const auto T = static_cast<int64_t>(batch.positions.size());
  const int64_t Hq = num_q_heads;
  const int64_t Hkv = kv.num_kv_heads;
  const int64_t hd = kv.head_dim;
  const int64_t bs = kv.block_size;
  const int64_t group = Hq / Hkv;
  int64_t max_len = 0;
  for (int32_t p : batch.positions) max_len = std::max<int64_t>(max_len, int64_t{p} + 1);

#pragma omp parallel if (T * Hq * max_len * hd >= kParallelMinWork * 16)
  {
    std::vector<float> scores(static_cast<size_t>(max_len));
    std::vector<float> acc(static_cast<size_t>(hd));
    std::optional<Histogram> local_scores;
    if (scores_seen != nullptr) local_scores.emplace();
#pragma omp for collapse(2) schedule(dynamic, 4)
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < Hq; ++h) {
        const int64_t seq = batch.token_seq[static_cast<size_t>(t)];
        const int64_t len = int64_t{batch.positions[static_cast<size_t>(t)]} + 1;
        const int32_t* table = batch.block_tables.data() + seq * batch.max_blocks_per_seq;
        const int64_t kvh = h / group;
        const float* qv = q + (t * Hq + h) * hd;
        auto slot_offset = [&](int64_t j) {
          return ((int64_t{table[j / bs]} * bs + j % bs) * Hkv + kvh) * hd;
        };

        float max_score = -std::numeric_limits<float>::infinity();
        for (int64_t j = 0; j < len; ++j) {
          const float s = dot_f32(qv, kv.k + slot_offset(j), hd) * scale;
          scores[static_cast<size_t>(j)] = s;
          max_score = std::max(max_score, s);
          if (local_scores) local_scores->add(s);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < len; ++j) {
          const float e = std::exp(scores[static_cast<size_t>(j)] - max_score);
          scores[static_cast<size_t>(j)] = e;
          sum += e;
        }
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t j = 0; j < len; ++j) {
          const float p = scores[static_cast<size_t>(j)];
          const float* vj = kv.v + slot_offset(j);
          for (int64_t d = 0; d < hd; ++d) acc[static_cast<size_t>(d)] += p * vj[d];
        }
        float* o = out + (t * Hq + h) * hd;
        for (int64_t d = 0; d < hd; ++d) o[d] = acc[static_cast<size_t>(d)] / sum;
      }
    }
    if (local_scores) {
#pragma omp critical(fdpp_attention_scores)
      scores_seen->merge(*local_scores);
    }
  }
}

}  // namespace fdpp::cpu

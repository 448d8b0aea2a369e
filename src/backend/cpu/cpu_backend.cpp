#include "backend/cpu/cpu_backend.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fdpp/status.h"

namespace fdpp {
namespace {

float* f32(TensorView& t) { return static_cast<float*>(t.data); }
const float* f32(const TensorView& t) { return static_cast<const float*>(t.data); }

void require_f32(const TensorView& t, const char* what) {
  if (t.dtype != DType::kF32 || t.device != Device::kCpu || !t.is_contiguous())
    throw Error(ErrorCode::kInternal,
                fmt::format("cpu backend: {} must be a contiguous fp32 host tensor", what));
}

// Rows of a [rows, cols] activation (any rank: all but the last dim are rows).
int64_t rows_of(const TensorView& t) { return t.numel() / t.dim(t.rank - 1); }

}  // namespace

DeviceTensor CpuBackend::allocate(DType dtype, std::initializer_list<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const size_t bytes = static_cast<size_t>(n) * dtype_size(dtype);
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  if (p == nullptr)
    throw Error(ErrorCode::kOutOfMemory, fmt::format("cpu backend: cannot allocate {} bytes", bytes));
  std::shared_ptr<void> owner(p, [](void* q) { std::free(q); });
  return DeviceTensor(TensorView::contiguous(p, dtype, shape), owner);
}

void CpuBackend::init_kv_cache(const KvCacheShape& shape) {
  kv_shape_ = shape;
  k_cache_.clear();
  v_cache_.clear();
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    k_cache_.push_back(allocate(DType::kF32, {shape.num_blocks, shape.block_size, shape.num_kv_heads, shape.head_dim}));
    v_cache_.push_back(allocate(DType::kF32, {shape.num_blocks, shape.block_size, shape.num_kv_heads, shape.head_dim}));
  }
}

void CpuBackend::fill_random(TensorView& t, uint64_t seed, float mean, float stddev) {
  // splitmix64 of (seed, index): uniform in [-1, 1) scaled to the standard deviation.
  const float half_width = stddev * 1.7320508f;  // uniform [-a, a) has std a / sqrt(3)
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + static_cast<uint64_t>(i) + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) / 8388608.0f - 1.0f;  // 24 bits -> [-1, 1)
    const float v = mean + half_width * u;
    switch (t.dtype) {
      case DType::kF32: static_cast<float*>(t.data)[i] = v; break;
      case DType::kF16: static_cast<uint16_t*>(t.data)[i] = float_to_half(v); break;
      case DType::kBF16: static_cast<uint16_t*>(t.data)[i] = float_to_bf16(v); break;
      default: throw Error(ErrorCode::kInternal, "fill_random: not a float tensor");
    }
  }
}

void CpuBackend::randomize_kv_cache(uint64_t seed) {
  for (size_t l = 0; l < k_cache_.size(); ++l) {
    fill_random(k_cache_[l].view(), seed + 2 * l, 0.0f, 1.0f);
    fill_random(v_cache_[l].view(), seed + 2 * l + 1, 0.0f, 1.0f);
  }
}

cpu::PagedKv CpuBackend::layer_kv(int64_t layer) {
  cpu::PagedKv kv;
  kv.k = static_cast<float*>(k_cache_.at(static_cast<size_t>(layer)).view().data);
  kv.v = static_cast<float*>(v_cache_.at(static_cast<size_t>(layer)).view().data);
  kv.num_blocks = static_cast<int32_t>(kv_shape_.num_blocks);
  kv.block_size = static_cast<int32_t>(kv_shape_.block_size);
  kv.num_kv_heads = static_cast<int32_t>(kv_shape_.num_kv_heads);
  kv.head_dim = static_cast<int32_t>(kv_shape_.head_dim);
  return kv;
}

cpu::AttentionBatch CpuBackend::attention_batch() const {
  cpu::AttentionBatch b;
  b.positions = step_.positions;
  b.token_seq = step_.token_seq;
  b.block_tables = step_.block_tables;
  b.max_blocks_per_seq = step_.max_blocks_per_seq;
  return b;
}

CpuBackend::CpuBackend() {
  const char* feed = std::getenv("FDPP_CPU_GREEDY_FEED");
  greedy_feed_ = feed != nullptr && std::string(feed) == "1";
}

void CpuBackend::begin_step(const StepBatch& batch) {
  if (batch.fed_tokens != 0 &&
      (!greedy_feed_ || batch.fed_tokens < 0 || batch.fed_tokens > static_cast<int32_t>(last_sampled_.size()) ||
       batch.fed_tokens > batch.num_tokens()))
    throw Error(ErrorCode::kInternal,
                fmt::format("cpu backend: a step of {} tokens with {} fed after a sample of {} rows{}",
                            batch.num_tokens(), batch.fed_tokens, last_sampled_.size(),
                            greedy_feed_ ? "" : " (it feeds none without FDPP_CPU_GREEDY_FEED=1)"));
  step_ = batch;
  std::copy_n(last_sampled_.begin(), batch.fed_tokens, step_.tokens.begin());
}

bool CpuBackend::queue_sample_rows(TensorView& logits, std::span<const cuda::DeviceSamplingRow> rows,
                                   const cuda::PenaltyTokens& penalties) {
  const bool greedy = std::all_of(rows.begin(), rows.end(), [](const auto& r) { return !(r.temperature > 0.0f); });
  if (!greedy_feed_ || !greedy || !penalties.offsets.empty() || logits.dtype != DType::kF32) return false;
  if (sampled_.size() == 2)
    throw Error(ErrorCode::kInternal, "cpu backend: two samples are already queued; take one before queueing another");
  const int64_t vocab = logits.dim(logits.rank - 1);
  const float* l = f32(logits);
  std::vector<int32_t> tokens;
  for (size_t r = 0; r < rows.size(); ++r) {  // the lowest id of the largest logit, as the host's greedy
    const float* row = l + static_cast<int64_t>(r) * vocab;
    tokens.push_back(static_cast<int32_t>(std::max_element(row, row + vocab) - row));
  }
  last_sampled_ = tokens;
  sampled_.push_back(std::move(tokens));
  return true;
}

void CpuBackend::take_sampled(std::span<int32_t> tokens) {
  if (sampled_.empty() || sampled_.front().size() != tokens.size())
    throw Error(ErrorCode::kInternal, fmt::format("cpu backend: {} sampled tokens asked for, {} queued samples",
                                                  tokens.size(), sampled_.size()));
  std::copy(sampled_.front().begin(), sampled_.front().end(), tokens.begin());
  sampled_.pop_front();
}

void CpuBackend::embed(const TensorView& table, TensorView& out) {
  require_f32(out, "embed output");
  cpu::embed(table, step_.tokens, f32(out));
}

void CpuBackend::rmsnorm(const TensorView& x, const TensorView& weight, float eps, TensorView& out) {
  require_f32(x, "rmsnorm input");
  require_f32(out, "rmsnorm output");
  cpu::rmsnorm(f32(x), weight, eps, rows_of(x), f32(out));
}

void CpuBackend::linear(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) {
  require_f32(x, "linear input");
  require_f32(out, "linear output");
  cpu::linear(f32(x), rows_of(x), w, bias, f32(out));
}

void CpuBackend::qkv_rope_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq,
                                TensorView& q_out) {
  require_f32(qkv, "qkv");
  require_f32(q_out, "rope output");
  require_f32(inv_freq, "rope inv_freq");
  const int64_t T = qkv.dim(0), hq = q_out.dim(1), hd = q_out.dim(2), hkv = kv_shape_.num_kv_heads;
  const int64_t q_dim = hq * hd, kv_dim = hkv * hd;
  if (qkv.dim(1) != q_dim + 2 * kv_dim)
    throw Error(ErrorCode::kInternal, fmt::format("qkv_rope_store: qkv has {} columns, {} q + 2 x {} kv expected",
                                                  qkv.dim(1), q_dim, kv_dim));
  std::vector<float> k(static_cast<size_t>(T * kv_dim)), v(k.size());
  for (int64_t t = 0; t < T; ++t) {
    const float* row = f32(qkv) + t * qkv.dim(1);
    std::memcpy(f32(q_out) + t * q_dim, row, static_cast<size_t>(q_dim) * sizeof(float));
    std::memcpy(k.data() + t * kv_dim, row + q_dim, static_cast<size_t>(kv_dim) * sizeof(float));
    std::memcpy(v.data() + t * kv_dim, row + q_dim + kv_dim, static_cast<size_t>(kv_dim) * sizeof(float));
  }
  const std::span<const float> freqs(f32(inv_freq), static_cast<size_t>(inv_freq.numel()));
  cpu::rope_rotate_half(f32(q_out), T, hq, hd, step_.positions, freqs);
  cpu::rope_rotate_half(k.data(), T, hkv, hd, step_.positions, freqs);
  cpu::kv_write(layer_kv(layer), k.data(), v.data(), attention_batch());
}

void CpuBackend::silu_mul(const TensorView& gate_up, TensorView& out) {
  require_f32(gate_up, "silu_mul input");
  require_f32(out, "silu_mul output");
  const int64_t rows = gate_up.dim(0), F = out.dim(out.rank - 1);
  if (gate_up.dim(1) != 2 * F)
    throw Error(ErrorCode::kInternal, fmt::format("silu_mul: gate_up has {} columns, 2 x {} expected", gate_up.dim(1), F));
  for (int64_t r = 0; r < rows; ++r) {
    const float* gu = f32(gate_up) + r * 2 * F;
    cpu::silu_mul(gu, gu + F, F, f32(out) + r * F);
  }
}

void CpuBackend::add(TensorView& x, const TensorView& y) {
  require_f32(x, "add input");
  require_f32(y, "add input");
  cpu::add_inplace(f32(x), f32(y), x.numel());
}

void CpuBackend::attention(int64_t layer, const TensorView& q, float scale, TensorView& out) {
  Histogram* scores = score_histograms_ != nullptr ? &score_histograms_->at(static_cast<size_t>(layer)) : nullptr;
  cpu::attention(f32(q), q.dim(1), layer_kv(layer), attention_batch(), scale, f32(out), scores);
}

void CpuBackend::gather_rows(const TensorView& x, TensorView& out) {
  const int64_t cols = x.dim(x.rank - 1);
  for (size_t r = 0; r < step_.logit_rows.size(); ++r) {
    std::memcpy(f32(out) + static_cast<int64_t>(r) * cols,
                f32(x) + static_cast<int64_t>(step_.logit_rows[r]) * cols,
                static_cast<size_t>(cols) * sizeof(float));
  }
}

void CpuBackend::logits_to_host(const TensorView& logits, std::span<float> out) {
  std::memcpy(out.data(), logits.data, std::min(out.size_bytes(), logits.nbytes()));
}

}  // namespace fdpp

// CpuBackend: the reference backend. fp32 activations and KV cache; weights read in place from
// the mapped checkpoint in their stored dtype (F32/F16/BF16). Every op is a cpu_ops.h call.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_ops.h"

namespace fdpp {

class CpuBackend : public Backend {
 public:
  CpuBackend();
  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }

  DeviceTensor allocate(DType dtype, std::initializer_list<int64_t> shape) override;
  TensorView adopt_weight(const TensorView& host) override { return host; }
  TensorView upload(const TensorView& host) override { return host; }
  void init_kv_cache(const KvCacheShape& shape) override;
  void fill_random(TensorView& t, uint64_t seed, float mean, float stddev) override;
  void randomize_kv_cache(uint64_t seed) override;

  void begin_step(const StepBatch& batch) override;
  void embed(const TensorView& table, TensorView& out) override;
  void rmsnorm(const TensorView& x, const TensorView& weight, float eps, TensorView& out) override;
  void linear(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) override;
  void qkv_rope_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq, TensorView& q_out) override;
  void silu_mul(const TensorView& gate_up, TensorView& out) override;
  void add(TensorView& x, const TensorView& y) override;
  void attention(int64_t layer, const TensorView& q, float scale, TensorView& out) override;
  void gather_rows(const TensorView& x, TensorView& out) override;
  void logits_to_host(const TensorView& logits, std::span<float> out) override;
  // FDPP_CPU_GREEDY_FEED=1 (tests): steps whose rows are all greedy are sampled here and their
  // tokens fed on to the next step (StepBatch::fed_tokens), as the GPU sampler's are, so that the
  // engine's steps queued ahead run without a GPU. Otherwise the host sampler draws every token.
  bool queue_sample_rows(TensorView& logits, std::span<const cuda::DeviceSamplingRow> rows,
                         const cuda::PenaltyTokens& penalties) override;
  void take_sampled(std::span<int32_t> tokens) override;
  bool feeds_sampled_tokens() const override { return greedy_feed_; }

  // Records every scaled attention score of layer l into (*per_layer)[l] (for calibration);
  // nullptr stops recording.
  void record_scores(std::vector<Histogram>* per_layer) { score_histograms_ = per_layer; }

 private:
  cpu::PagedKv layer_kv(int64_t layer);
  cpu::AttentionBatch attention_batch() const;

  KvCacheShape kv_shape_;
  // Per layer [num_blocks, block_size, Hkv, hd] fp32, left uninitialised: pages are touched only
  // as sequences fill them, and attention reads only slots that were written.
  std::vector<DeviceTensor> k_cache_;
  std::vector<DeviceTensor> v_cache_;
  StepBatch step_;
  std::vector<Histogram>* score_histograms_ = nullptr;
  bool greedy_feed_ = false;
  std::deque<std::vector<int32_t>> sampled_;  // queued samples' tokens, oldest first
  std::vector<int32_t> last_sampled_;         // the last queued sample's: what a fed step takes
};

}  // namespace fdpp

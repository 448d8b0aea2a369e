// CudaBackend: the GPU half of the forward pass. fp16 or bf16 activations and KV cache, weights
// uploaded once, one stream, no synchronisation until the logits are copied out.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "backend/backend.h"
#include "backend/cuda/attention/attention.cuh"
#include "backend/cuda/gemm/linear_dispatch.h"
#include "backend/cuda/host_staging.h"
#include "backend/cuda/sampled_tokens.h"
#include "backend/cuda/step_graphs.h"

namespace fdpp::cuda {

class CudaBackend final : public Backend {
 public:
  // activation_dtype: kF16 or kBF16.
  CudaBackend(int device, DType activation_dtype);
  ~CudaBackend() override;

  std::string name() const override { return name_; }
  DType activation_dtype() const override { return dtype_; }
  double read_bandwidth_ceiling() const override { return ceiling_; }
  uint64_t softmax_fallback_rows() const override;
  bool start_kernel_timeline(std::string* why_not) override;
  std::vector<KernelSpan> stop_kernel_timeline() override;
  void set_softmax_ranges(const std::vector<SoftmaxRangeSetting>& per_layer) override;

  DeviceTensor allocate(DType dtype, std::initializer_list<int64_t> shape) override;
  TensorView adopt_weight(const TensorView& host) override;
  TensorView upload(const TensorView& host) override;
  // Two strided copies into one allocation when a and b are in the activation dtype; empty (the
  // model interleaves on the host, then adopt_weight converts) otherwise.
  TensorView adopt_interleaved_rows(const TensorView& a, const TensorView& b) override;
  // Folded: a norm the product's kernel cannot take becomes a row scale in the product's consumer
  // (qkv_store, the interleaved silu_mul) for up to kDeferredNormMaxRows rows, not a norm launch.
  bool folds_norm_weights() const override { return true; }
  // Up to this many rows a deferred norm's consumers recompute each row's inv rms per block (from
  // L2, a few loads per thread): a decode step's batch. Above it one norm launch costs less.
  static constexpr int64_t kDeferredNormMaxRows = 64;
  void fold_norm_weight(const TensorView& w, const TensorView& norm) override;
  void init_kv_cache(const KvCacheShape& shape) override;
  void fill_random(TensorView& t, uint64_t seed, float mean, float stddev) override;
  void randomize_kv_cache(uint64_t seed) override;

  void begin_step(const StepBatch& batch) override;
  bool begin_graph_step(uint64_t model_key, int64_t num_q_heads) override;
  void end_graph_step() override;
  void embed(const TensorView& table, TensorView& out) override;
  void rmsnorm(const TensorView& x, const TensorView& weight, float eps, TensorView& out) override;
  void linear(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) override;
  void linear_fused(const TensorView& x, const TensorView& w, const TensorView& bias, const LinearFusion& fusion,
                    TensorView& out, TensorView& scratch) override;
  void qkv_rope_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq, TensorView& q_out) override;
  void qkv_projection(int64_t layer, const TensorView& x, const TensorView& wqkv, const TensorView& bqkv,
                      const LinearFusion& norm, const TensorView& inv_freq, TensorView& qkv, TensorView& normed,
                      TensorView& q_out) override;
  void silu_mul(const TensorView& gate_up, TensorView& out) override;
  bool interleaves_gate_up() const override { return true; }
  // The GEMV and the streamed flat GEMM write silu(gate) * up in their epilogue (the products are
  // never stored); cuBLASLt's products go through the interleaved silu_mul.
  void gate_up_silu(const TensorView& x, const TensorView& w, const LinearFusion& norm, TensorView& act,
                    TensorView& normed, TensorView& gate_up) override;
  void add(TensorView& x, const TensorView& y) override;
  void attention(int64_t layer, const TensorView& q, float scale, TensorView& out) override;
  void gather_rows(const TensorView& x, TensorView& out) override;
  void logits_to_host(const TensorView& logits, std::span<float> out) override;
  bool queue_sample_rows(TensorView& logits, std::span<const DeviceSamplingRow> rows,
                         const PenaltyTokens& penalties) override;
  void take_sampled(std::span<int32_t> tokens) override;
  // A fed step's first tokens are copied on the device from the last sample's, after its metadata
  // (FDPP_OVERLAP_STEPS=0 turns it off, and with it the host's step queued ahead).
  bool feeds_sampled_tokens() const override { return sampling_enabled_ && overlap_steps_; }

  LinearDispatcher& linear_dispatcher() { return *linear_; }

 private:
  DeviceTensor allocate_bytes(size_t bytes, const char* what);
  TokenSlots slots() const;
  // Partitions this step's attention launches and sizes their workspace (once per step).
  void plan_step_attention(int64_t num_q_heads);
  template <typename T>
  PagedKv<T> layer_kv(int64_t layer);
  // Whether the norm before x . w^T is applied as a row scale after the product: a unit norm
  // weight (folded), few rows, and a chosen kernel that cannot fuse the norm itself.
  bool defers_norm(const TensorView& x, const TensorView& w, const LinearFusion& norm) const;
  // The QKV projection at decode as one kernel whose epilogue rotates q and k and stores q, k and
  // v (LinearDispatcher::run_rope_store_with): the GEMV's, or the streamed flat GEMM's at few rows;
  // no qkv_store launch. False (nothing launched) where the dispatcher chooses neither, the
  // operands or the norm do not fit the epilogue, or FDPP_QKV_EPILOGUE=0.
  bool qkv_epilogue(int64_t layer, const TensorView& x, const TensorView& wqkv, const TensorView& bqkv,
                    const LinearFusion& norm, const TensorView& inv_freq, TensorView& q_out);
  // qkv_rope_store with qkv's rows scaled first where `scale` is set (a deferred norm).
  void qkv_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq, TensorView& q_out,
                 const TensorView& scale_rows, float eps);

  int device_;
  DType dtype_;
  std::string name_;
  double ceiling_ = 0;
  int sm_count_ = 0;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<LinearDispatcher> linear_;  // GEMV / flat GEMM / cuBLASLt by M
  std::vector<DeviceTensor> weights_;        // owned uploads

  KvCacheShape kv_shape_;
  std::vector<DeviceTensor> k_cache_, v_cache_;  // per layer [num_blocks, block_size, Hkv, hd]
  SoftmaxRange range_;                      // default for layers without a calibrated range
  std::vector<SoftmaxRange> layer_ranges_;  // from softmax_range.json
  DeviceTensor fallback_counter_;            // one unsigned long long
  // softmax_fallback_rows() while steps are queued: a page-locked copy of the counter read
  // behind them, and the count as of the last such read that landed.
  unsigned long long* fallback_host_ = nullptr;
  cudaEvent_t fallback_read_ = nullptr;
  mutable bool fallback_read_pending_ = false;
  mutable uint64_t fallback_rows_seen_ = 0;

  // Step metadata: one host staging buffer and its device copy, laid out as
  // tokens [T] | positions [T] | token_seq [T] | logit_rows [R] | block_tables [S, max_blocks] |
  // decode_rows [Rd] | prefill_rows [Rp] | prefill_tiles [Nt, 2].
  // Attention runs in two launches: tokens that are alone in their sequence this step (decode)
  // take the split-KV kernels; runs of 2+ tokens of a sequence (prefill chunks) take the
  // prefill kernel in tiles of up to 16 tokens.
  std::vector<int32_t> staging_;
  HostStaging host_staging_;  // the page-locked copy of staging_ and of the per-step uploads
  DeviceTensor step_meta_;
  int64_t step_meta_capacity_ = 0;
  int64_t tokens_ = 0, rows_ = 0;
  int32_t max_blocks_ = 0;
  int64_t decode_rows_ = 0, prefill_rows_ = 0, prefill_tiles_ = 0;
  int64_t decode_offset_ = 0, prefill_offset_ = 0, tiles_offset_ = 0;  // into the metadata
  int64_t decode_max_kv_len_ = 0;
  AttentionPlan decode_plan_, prefill_plan_;  // this step's partitioning
  bool attn_plan_valid_ = false;
  DeviceTensor attn_workspace_;
  size_t attn_workspace_bytes_ = 0;

  // Decode steps recorded as CUDA graphs (FDPP_CUDA_GRAPHS=0 turns them off). Dropped whenever a
  // buffer they read moves: the step metadata, the attention workspace, the KV cache.
  bool graphs_enabled_ = true;
  // FDPP_POISON_ALLOCATIONS=1: new buffers start as all-ones bytes (NaN), so reads of unwritten
  // memory show in the results instead of passing on a fresh, zeroed allocation.
  bool poison_allocations_ = false;
  StepGraphs graphs_;

  // A device buffer that grows (to the larger of what is asked and twice its size) and never
  // shrinks, for per-step host inputs of varying size.
  struct GrowingBuffer {
    DeviceTensor tensor;
    size_t bytes = 0;
  };
  // The buffer's device address once it holds `bytes` (at least 1).
  void* reserve(GrowingBuffer& buffer, size_t bytes, const char* what);
  // Copies `bytes` of host data into the buffer (grown first) on the stream; its device address.
  void* upload(GrowingBuffer& buffer, const void* host, size_t bytes, const char* what);

  // GPU sampling (FDPP_GPU_SAMPLING=0 turns it off): row parameters in, tokens out.
  bool sampling_enabled_ = true;
  bool overlap_steps_ = true;
  bool qkv_epilogue_ = true;  // FDPP_QKV_EPILOGUE=0: the QKV GEMV writes qkv and qkv_store runs
  GrowingBuffer sample_rows_, sample_tokens_;  // [R] DeviceSamplingRow, [R] int32
  int64_t sampled_rows_ = 0;                   // rows of the last queued sample (in sample_tokens_)
  SampledTokenQueue sampled_;                  // their way to the host
  GrowingBuffer penalty_ids_, penalty_offsets_;  // [ids] int32, [R + 1] int64
};

}  // namespace fdpp::cuda

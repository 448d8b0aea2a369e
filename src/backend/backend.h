// Backend: the device-specific half of a forward pass. The model's forward is written once
// (model/llama_model.cpp) against this interface; the CPU backend is the reference, the CUDA
// backend the fast path. A backend executes ops on TensorViews it allocated itself; the metadata of
// one step (which tokens, which cache slots) is handed over once per step by begin_step().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/cuda/sampling/sampling_row.h"
#include "core/kernel_spans.h"
#include "core/tensor.h"

namespace fdpp {

// FlashDecoding++'s unified max value phi and the range [lo, hi] of scaled scores it is used for,
// per layer, from `fdpp calibrate` (runtime/softmax_calibration.h).
struct SoftmaxRangeSetting {
  float phi = 0.0f;
  float lo = -60.0f;
  float hi = 60.0f;
};

// Geometry of the paged KV cache: per layer, K and V of [num_blocks, block_size, Hkv, hd].
struct KvCacheShape {
  int64_t num_layers = 0;
  int64_t num_blocks = 0;
  int64_t block_size = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

// One forward step: the new tokens of S sequences, concatenated (prefill chunks and single
// decode tokens mixed). T = tokens.size().
struct StepBatch {
  std::vector<int32_t> tokens;        // [T] token ids
  std::vector<int32_t> positions;     // [T] position of each token in its sequence
  std::vector<int32_t> token_seq;     // [T] sequence index (0..S-1) of each token
  std::vector<int32_t> block_tables;  // [S, max_blocks_per_seq] cache block ids, -1 = unused
  int32_t max_blocks_per_seq = 0;
  std::vector<int32_t> logit_rows;    // [R] rows of T whose logits are wanted (last of each seq)
  // Tokens [0, fed_tokens) are the tokens the backend drew for rows [0, fed_tokens) of the last
  // sample it queued (queue_sample_rows), which the host does not have yet: their ids in `tokens`
  // are placeholders. Only for backends that feeds_sampled_tokens(); 0 everywhere else.
  int32_t fed_tokens = 0;

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
};

// A device allocation with its view; freed by the backend that made it.
class DeviceTensor {
 public:
  DeviceTensor() = default;
  DeviceTensor(TensorView view, std::shared_ptr<void> owner) : view_(view), owner_(std::move(owner)) {}
  const TensorView& view() const { return view_; }
  TensorView& view() { return view_; }
  bool empty() const { return view_.empty(); }

 private:
  TensorView view_;
  std::shared_ptr<void> owner_;
};

// What Backend::linear_fused does around its product: at most one of the two.
struct LinearFusion {
  TensorView norm_weight;   // set: the input is rmsnorm(x) * norm_weight [K] (with eps), not x
  float eps = 0.0f;
  bool accumulate = false;  // out += product (the residual add) instead of out = product
  // norm_weight is all ones: the real weight was folded into w's columns (folds_norm_weights), so
  // the norm is only a per-row scale, which a backend may apply to the product instead.
  bool unit_norm_weight = false;
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string name() const = 0;          // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
  virtual DType activation_dtype() const = 0;    // dtype of activations and of the KV cache
  // Read bandwidth ceiling in bytes/s for speed reports, 0 when not measured for this device.
  virtual double read_bandwidth_ceiling() const { return 0.0; }
  // Attention rows recomputed by the online-softmax fallback since start (FlashDecoding++'s
  // unified max value did not cover them). Always 0 on backends without the async softmax.
  // Exact when no work is queued; while steps are, the count as of work already done (no wait).
  virtual uint64_t softmax_fallback_rows() const { return 0; }
  // Per-layer unified max values for the asynchronized softmax; backends without it ignore them.
  virtual void set_softmax_ranges(const std::vector<SoftmaxRangeSetting>& per_layer) {}
  // Records the start and end of every kernel the backend runs until stop_kernel_timeline() (fdpp
  // bench --timeline); false, with the reason, where the backend cannot.
  virtual bool start_kernel_timeline(std::string* why_not);
  // The spans recorded since start_kernel_timeline(), once the backend's work has finished.
  virtual std::vector<KernelSpan> stop_kernel_timeline() { return {}; }

  // ---- memory ----
  // A contiguous buffer of `shape` on this backend (contents undefined).
  virtual DeviceTensor allocate(DType dtype, std::initializer_list<int64_t> shape) = 0;
  // A weight usable by the ops: the CPU backend returns `host` itself (it reads the mapped file);
  // the CUDA backend uploads it once, converting F32 to its activation dtype.
  virtual TensorView adopt_weight(const TensorView& host) = 0;
  // One weight [2R, C] from two host weights a, b [R, C] of one dtype: row 2j is a's row j and row
  // 2j + 1 b's row j (the interleaved gate/up matrix, interleaves_gate_up), uploaded without a host
  // copy; or an empty view where this backend has no such path (the caller interleaves on the
  // host and adopts the result).
  virtual TensorView adopt_interleaved_rows(const TensorView& a, const TensorView& b) { return {}; }
  // Whether the model should fold each RMSNorm weight into the columns of the projection after it
  // (fold_norm_weight) and hand that projection a unit norm weight (LinearFusion::unit_norm_weight):
  // the norm is then one scale per row, which the backend can apply after a product it cannot fuse
  // the norm into, instead of launching a norm before it.
  virtual bool folds_norm_weights() const { return false; }
  // w [N, K] (a weight of this backend) *= norm [K] per column, in place, rounded once.
  virtual void fold_norm_weight(const TensorView& w, const TensorView& norm);
  // An exact copy of a host table on this backend, dtype kept (CPU: `host` itself).
  virtual TensorView upload(const TensorView& host) = 0;
  // (Re)creates the KV cache; all previous contents are dropped.
  virtual void init_kv_cache(const KvCacheShape& shape) = 0;
  // Fills t (of this backend, a float dtype) with values of the given mean and standard deviation
  // (uniform, from a hash of seed and index): benchmark inputs, never zeros.
  virtual void fill_random(TensorView& t, uint64_t seed, float mean, float stddev) = 0;
  // Random K and V in the whole cache: a benchmark at context C needs C cached positions.
  virtual void randomize_kv_cache(uint64_t seed) = 0;

  // ---- one step ----
  // Hands over the step's metadata; ops below refer to it until the next begin_step().
  virtual void begin_step(const StepBatch& batch) = 0;

  // CUDA graphs (optional). Called by the model right after begin_step(): a backend holding a
  // recorded step for this step's shape and `model_key` (which names the model's buffers) launches
  // it and returns true; the model then skips its ops and goes on to logits_to_host(). Otherwise
  // the backend may start recording the ops that follow, and end_graph_step() (called after the
  // last op) ends the recording and runs it. num_q_heads: the attention's query heads.
  virtual bool begin_graph_step(uint64_t model_key, int64_t num_q_heads) { return false; }
  virtual void end_graph_step() {}

  // out [T, D] = table[tokens] for table [V, D]
  virtual void embed(const TensorView& table, TensorView& out) = 0;
  // out [R, D] = rmsnorm(x [R, D]) * weight [D]
  virtual void rmsnorm(const TensorView& x, const TensorView& weight, float eps, TensorView& out) = 0;
  // out [M, N] = x [M, K] . w [N, K]^T (+ bias [N])
  virtual void linear(const TensorView& x, const TensorView& w, const TensorView& bias, TensorView& out) = 0;
  // out [M, N] (+)= input [M, K] . w [N, K]^T (+ bias [N]), with the RMSNorm before it or the
  // residual add after it as `fusion` says. This default runs the steps one by one through
  // `scratch`: [M, K] for the normalised input, [M, N] for the product. Fast backends fuse them
  // into the product where their kernels can (the GEMV of a decode step).
  virtual void linear_fused(const TensorView& x, const TensorView& w, const TensorView& bias,
                            const LinearFusion& fusion, TensorView& out, TensorView& scratch);
  // The fused QKV projection's output qkv [T, (Hq + 2 Hkv) * hd] (per token: Hq query heads, then
  // Hkv key heads, then Hkv value heads) is split three ways: q rotated by the step's positions
  // (rotate-half RoPE; inv_freq [hd/2] fp32, an uploaded table) into q_out [T, Hq, hd]; k rotated
  // and v as is stored in the step's cache slots of `layer`. One pass over the data instead of a
  // rope per head group and a cache write.
  virtual void qkv_rope_store(int64_t layer, const TensorView& qkv, const TensorView& inv_freq,
                              TensorView& q_out) = 0;
  // The attention's input: qkv [T, (Hq + 2 Hkv) * hd] = linear_fused(x [T, D], wqkv, bqkv, norm),
  // then qkv_rope_store of it. One call so that a backend can apply the norm's row scale in the
  // split instead of normalising before the product. normed [T, D] is the unfused norm's scratch.
  // This default runs the two.
  virtual void qkv_projection(int64_t layer, const TensorView& x, const TensorView& wqkv, const TensorView& bqkv,
                              const LinearFusion& norm, const TensorView& inv_freq, TensorView& qkv,
                              TensorView& normed, TensorView& q_out);
  // out [R, F] = silu(gate) * up, where gate_up [R, 2F] holds gate in columns [0, F) and up in
  // [F, 2F) (the fused gate/up projection's output).
  virtual void silu_mul(const TensorView& gate_up, TensorView& out) = 0;
  // How this backend wants the fused gate/up matrix [2F, K]: gate_proj's rows then up_proj's
  // (false), or interleaved, row 2j gate_proj row j and row 2j + 1 up_proj row j (true), so that
  // a kernel holding a pair of rows can write silu(gate) * up in its epilogue. The model builds
  // the matrix this way from host weights; weights made on the backend (random benchmark
  // weights) are taken as they lie.
  virtual bool interleaves_gate_up() const { return false; }
  // act [M, F] = silu(gate) * up of the fused gate/up projection of x [M, K] by w [2F, K] (laid out
  // as interleaves_gate_up() says), with the RMSNorm before it when norm.norm_weight is set
  // (norm.accumulate must be false). normed [M, K] and gate_up [M, 2F] are the scratch of the
  // unfused steps (the normalised input, the products). This default runs linear_fused, then
  // silu_mul.
  virtual void gate_up_silu(const TensorView& x, const TensorView& w, const LinearFusion& norm, TensorView& act,
                            TensorView& normed, TensorView& gate_up);
  // x [R, D] += y [R, D]
  virtual void add(TensorView& x, const TensorView& y) = 0;
  // Causal attention of q [T, Hq, hd] over the cache of `layer`; out [T, Hq, hd].
  virtual void attention(int64_t layer, const TensorView& q, float scale, TensorView& out) = 0;
  // out [R, D] = x [T, D] rows at the step's logit_rows
  virtual void gather_rows(const TensorView& x, TensorView& out) = 0;
  // Copies logits [R, V] to host fp32 (waits for the step to finish).
  virtual void logits_to_host(const TensorView& logits, std::span<float> out) = 0;
  // Queues the sampling of one token per row of logits [R, V] (fp32, on this backend) with
  // rows[r]'s parameters (a repetition penalty over the row's ids in `penalties`, applied to the
  // logits in place) and the copy of only the R tokens to the host, and returns without waiting;
  // take_sampled() hands them out, oldest first (at most two samples queued). Backends without a
  // sampler return false and leave the logits alone; the caller then copies the logits.
  virtual bool queue_sample_rows(TensorView& logits, std::span<const cuda::DeviceSamplingRow> rows,
                                 const cuda::PenaltyTokens& penalties) {
    return false;
  }
  // Waits for the oldest queued sample's tokens; tokens.size() must be its row count.
  virtual void take_sampled(std::span<int32_t> tokens);
  // Whether a step may take its first tokens from the last queued sample (StepBatch::fed_tokens),
  // so that the host can queue step n + 1 before step n's tokens reach it.
  virtual bool feeds_sampled_tokens() const { return false; }
};

enum class BackendKind { kAuto, kCpu, kCuda };

// kAuto: CUDA when built with it and a device is present, else CPU. Throws fdpp::Error when the
// kind asked for is not available, saying why.
// activations: the GPU activation dtype (kF16 or kBF16); the CPU backend always runs in fp32.
std::unique_ptr<Backend> create_backend(BackendKind kind, DType activations = DType::kF16);
// "auto" picks bf16 for a bf16 checkpoint and fp16 otherwise; "f16" / "bf16" force it.
DType parse_activation_dtype(const std::string& name, DType weight_dtype);
BackendKind parse_backend_kind(const std::string& name);  // "auto" | "cpu" | "cuda"

}  // namespace fdpp

// LlamaModel: the Llama-family forward pass, written once against the Backend interface.
// One call of forward() runs a StepBatch (prefill chunks and decode tokens of many sequences
// together) and returns the logits of the rows the batch asks for.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "model/weights.h"

namespace fdpp {

// Where the weights handed to LlamaModel live: views into a checkpoint (adopted, i.e. uploaded,
// by the backend), or already on the backend (random benchmark weights; the model then owns them:
// a backend that folds norm weights changes the projections in place, so build one model of them).
enum class WeightPlacement { kHost, kOnBackend };

// One layer as the forward pass reads it: the projections that share an input fused into one
// matrix each (QKV, gate/up), so a decode step launches one GEMV where the checkpoint has three
// or two, each with a larger N (better for the tiny-M kernels).
struct FusedLayerWeights {
  TensorView input_norm;      // [D]                     all ones where folded into wqkv
                              //                         (Backend::folds_norm_weights)
  TensorView wqkv;            // [(Hq + 2 Hkv) * hd, D]  q_proj | k_proj | v_proj rows
  TensorView bqkv;            // [(Hq + 2 Hkv) * hd]     empty unless attention_bias
  TensorView wo;              // [D, Hq * hd]
  TensorView post_attn_norm;  // [D]                     all ones where folded into w_gate_up
  TensorView w_gate_up;       // [2F, D]                 gate_proj | up_proj rows, or interleaved
                              //                         (Backend::interleaves_gate_up)
  TensorView w_down;          // [D, F]
};

class LlamaModel {
 public:
  LlamaModel(const ModelConfig& config, const LlamaWeights& weights, Backend& backend,
             WeightPlacement placement = WeightPlacement::kHost);

  const ModelConfig& config() const { return config_; }
  Backend& backend() { return backend_; }

  // Runs one step. The batch's tokens must already have cache blocks in its block tables.
  // logits: resized to [R, V] fp32, R = batch.logit_rows.size().
  void forward(const StepBatch& batch, std::vector<float>& logits);
  // Runs one step and samples its R logit rows on the backend with rows[r]'s parameters (and a
  // repetition penalty over `penalties`' ids of each row): tokens [R] filled, true. A backend
  // without a sampler returns false after copying the logits into `logits` [R, V] instead, for
  // the host sampler.
  bool forward_sampled(const StepBatch& batch, std::span<const cuda::DeviceSamplingRow> rows,
                       std::span<int32_t> tokens, std::vector<float>& logits,
                       const cuda::PenaltyTokens& penalties = {});
  // forward_sampled in two halves: queue the step and its sampling (true; the host goes on while
  // the device works), then take its tokens [R] (waits). At most two steps queued at once: the
  // host may queue step n + 1, whose first tokens are step n's (StepBatch::fed_tokens, where
  // the backend feeds_sampled_tokens()), before taking step n's. false from launch_sampled: as
  // forward_sampled's, the logits are in `logits` and nothing is left to take.
  bool launch_sampled(const StepBatch& batch, std::span<const cuda::DeviceSamplingRow> rows,
                      std::vector<float>& logits, const cuda::PenaltyTokens& penalties = {});
  void collect_sampled(std::span<int32_t> tokens) { backend_.take_sampled(tokens); }
  bool feeds_sampled_tokens() const { return backend_.feeds_sampled_tokens(); }

  // Bytes of weights one decode step streams (all but the embedding table, which is gathered;
  // the LM head counts even when tied): the numerator of the bandwidth figure.
  size_t weight_bytes_per_step() const { return weight_bytes_per_step_; }
  // KV-cache bytes per token of context per decode step (K and V, all layers).
  size_t kv_bytes_per_token() const;

 private:
  // Activation buffers sized for `tokens` rows and `logit_rows` logit rows (grown on demand).
  struct Activations {
    int64_t capacity_tokens = 0;
    int64_t capacity_rows = 0;
    uint64_t generation = 0;  // bumped when the buffers move: names them to the backend's CUDA graphs
    DeviceTensor x;        // [T, D]   residual stream
    DeviceTensor h;        // [T, D]   normalised input of a block
    DeviceTensor qkv;      // [T, (Hq + 2 Hkv) * hd]  fused projection output
    DeviceTensor q;        // [T, Hq*hd] rotated queries
    DeviceTensor attn;     // [T, Hq*hd] attention output
    DeviceTensor out;      // [T, D]   o_proj / down_proj output, added to x
    DeviceTensor gate_up;  // [T, 2F]  fused gate/up projection output (where it is not fused away)
    DeviceTensor act;      // [T, F]   silu(gate) * up
    DeviceTensor last;     // [R, D]   rows whose logits are wanted
    DeviceTensor last_n;   // [R, D]   the same after the final norm
    DeviceTensor logits;   // [R, V]
  };
  void reserve(int64_t tokens, int64_t rows);
  // The layers, final norm and LM head of one step (everything after begin_step()).
  void run_layers(int64_t T, int64_t R);
  // Everything up to the logits on the backend: act_.logits [R, V].
  void run_step(const StepBatch& batch);
  // act_.logits' first R rows to the host: logits resized to [R, V].
  void copy_logits(int64_t R, std::vector<float>& logits);
  // Rows of `parts` (one dtype, equal trailing dims) as one tensor on the backend: a view spanning
  // them when they already lie back to back in memory, else a host copy adopted by the backend.
  TensorView fuse_rows(std::initializer_list<TensorView> parts, WeightPlacement placement);
  // gate_proj [F, D] and up_proj [F, D] as one [2F, D] matrix in the backend's layout.
  TensorView fuse_gate_up(const TensorView& gate, const TensorView& up, WeightPlacement placement);

  ModelConfig config_;
  Backend& backend_;
  TensorView embed_;         // [V, D] adopted by the backend, like every weight below
  std::vector<FusedLayerWeights> layers_;  // [L]
  TensorView final_norm_;    // [D]
  TensorView lm_head_;       // [V, D] (the embedding when tied)
  std::vector<std::vector<std::byte>> fused_host_;  // host copies the backend reads in place (CPU)
  std::vector<float> inv_freq_host_;  // [hd/2] fp32 RoPE frequencies (host copy; the CPU reads it)
  TensorView inv_freq_;               // the same, adopted by the backend
  bool norms_folded_ = false;         // the layers' norm weights live in wqkv and w_gate_up
  std::vector<float> unit_norm_host_; // [D] ones, where norms_folded_
  TensorView unit_norm_;              // the same, adopted: the layers' norm weight then
  Activations act_;
  size_t weight_bytes_per_step_ = 0;
};

}  // namespace fdpp

// The CPU reference on a random-weight model with a fast-path head dim (the tiny shape, head dim
// 64, GQA 2): a step holding two sequences gives each the logits it gets alone, whatever the
// block tables. The GPU model tests compare against exactly these steps. And a backend that wants
// the gate/up rows interleaved (the CUDA backend's layout) gets the same logits.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/cpu/cpu_backend.h"
#include "model/llama_model.h"
#include "model/model_shapes.h"
#include "model/random_weights.h"

namespace fdpp {
namespace {

StepBatch prompt_step(const std::vector<std::pair<int32_t, int32_t>>& seq_lengths, const std::vector<int32_t>& tables,
                      int32_t max_blocks, int64_t vocab) {
  StepBatch b;
  b.block_tables = tables;
  b.max_blocks_per_seq = max_blocks;
  int32_t index = 0;
  for (const auto& [seq, len] : seq_lengths) {
    for (int32_t pos = 0; pos < len; ++pos) {
      b.tokens.push_back(static_cast<int32_t>((pos * 7919 + seq * 104729 + 13) % vocab));
      b.positions.push_back(pos);
      b.token_seq.push_back(index);
    }
    b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size()) - 1);
    ++index;
  }
  return b;
}

TEST(CpuRandomModel, TwoSequencesInOneStepEqualEachAlone) {
  const ModelConfig config = named_model_shape("tiny");
  CpuBackend cpu;
  std::vector<DeviceTensor> storage;
  const LlamaWeights weights = make_random_weights(config, cpu, storage, 1234);
  LlamaModel model(config, weights, cpu, WeightPlacement::kOnBackend);
  const KvCacheShape kv{config.num_hidden_layers, 16, 16, config.num_key_value_heads, config.head_dim};
  const int64_t V = config.vocab_size;

  cpu.init_kv_cache(kv);
  std::vector<float> both;
  model.forward(prompt_step({{0, 37}, {1, 5}}, {0, 2, 4, 6, 15, 13, 11, 9}, 4, V), both);

  for (int32_t seq : {0, 1}) {
    cpu.init_kv_cache(kv);
    std::vector<float> alone;
    const int32_t len = seq == 0 ? 37 : 5;
    model.forward(prompt_step({{seq, len}}, {3, 8, 1, 7}, 4, V), alone);
    ASSERT_EQ(alone.size(), static_cast<size_t>(V));
    double max_diff = 0, max_abs = 0;
    for (int64_t i = 0; i < V; ++i) {
      ASSERT_TRUE(std::isfinite(alone[i]) && std::isfinite(both[static_cast<size_t>(seq * V + i)])) << "logit " << i;
      max_diff = std::max(max_diff, std::abs(double(alone[i]) - both[static_cast<size_t>(seq * V + i)]));
      max_abs = std::max(max_abs, std::abs(double(alone[i])));
    }
    EXPECT_LT(max_diff, 1e-4 * max_abs) << "sequence " << seq;
  }
}

// A CPU backend that asks for interleaved gate/up rows (as the CUDA backend does) and reads the
// products in pairs in its own gate_up_silu: checks the model's interleaving at load without a GPU.
class InterleavingCpuBackend : public CpuBackend {
 public:
  bool interleaves_gate_up() const override { return true; }
  void gate_up_silu(const TensorView& x, const TensorView& w, const LinearFusion& norm, TensorView& act,
                    TensorView& normed, TensorView& gate_up) override {
    linear_fused(x, w, TensorView{}, norm, gate_up, normed);
    const int64_t F = act.dim(act.rank - 1), rows = act.numel() / F;
    const auto* products = static_cast<const float*>(gate_up.data);
    auto* out = static_cast<float*>(act.data);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < F; ++j) {
        const float gate = products[r * 2 * F + 2 * j], up = products[r * 2 * F + 2 * j + 1];
        out[r * F + j] = gate / (1.0f + std::exp(-gate)) * up;
      }
  }
};

TEST(CpuRandomModel, InterleavedGateUpRowsGiveTheSameLogits) {
  const ModelConfig config = named_model_shape("tiny");
  CpuBackend cpu;
  InterleavingCpuBackend interleaving;
  std::vector<DeviceTensor> storage;
  const LlamaWeights weights = make_random_weights(config, cpu, storage, 99);  // host memory: both read it
  LlamaModel plain(config, weights, cpu, WeightPlacement::kHost);
  LlamaModel interleaved(config, weights, interleaving, WeightPlacement::kHost);
  const KvCacheShape kv{config.num_hidden_layers, 16, 16, config.num_key_value_heads, config.head_dim};
  cpu.init_kv_cache(kv);
  interleaving.init_kv_cache(kv);
  const StepBatch step = prompt_step({{0, 21}, {1, 6}}, {0, 1, 2, 3, 4, 5, 6, 7}, 4, config.vocab_size);
  std::vector<float> want, got;
  plain.forward(step, want);
  interleaved.forward(step, got);
  ASSERT_EQ(got.size(), want.size());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << "logit " << i;
    max_diff = std::max(max_diff, std::abs(double(got[i]) - want[i]));
    max_abs = std::max(max_abs, std::abs(double(want[i])));
  }
  EXPECT_LT(max_diff, 1e-5 * max_abs);
}

}  // namespace
}  // namespace fdpp

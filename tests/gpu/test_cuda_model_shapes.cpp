// Whole small models with the fast-path head dims (64, 128) on the GPU against the CPU backend,
// through steps that mix prefill chunks and decode tokens the way the engine and the server do:
// a pure prefill step (no decode row), a pure decode step, and a decode token beside a prefill
// chunk that starts at a nonzero position, then decode steps of one shape (CUDA graph replays).
// stories260K (head dim 8) only reaches the generic path.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_device.h"
#include "core/dtype.h"
#include "gpu/gpu_test_util.h"
#include "model/llama_model.h"
#include "model/model_shapes.h"
#include "model/random_weights.h"

namespace fdpp {
namespace {

constexpr int64_t kBlockSize = 16;
constexpr int64_t kBlocksPerSeq = 8;  // 128 positions per sequence

// Two sequences with interleaved block tables (seq 0: even blocks, seq 1: odd blocks, reversed).
StepBatch make_step(const std::vector<std::pair<int32_t, std::vector<int32_t>>>& per_seq_positions, int64_t vocab) {
  StepBatch b;
  b.max_blocks_per_seq = kBlocksPerSeq;
  for (int32_t s = 0; s < 2; ++s)
    for (int32_t i = 0; i < kBlocksPerSeq; ++i)
      b.block_tables.push_back(s == 0 ? 2 * i : 2 * (kBlocksPerSeq - 1 - i) + 1);
  for (const auto& [seq, positions] : per_seq_positions) {
    for (int32_t pos : positions) {
      b.tokens.push_back(static_cast<int32_t>((pos * 7919 + seq * 104729 + 13) % vocab));
      b.positions.push_back(pos);
      b.token_seq.push_back(seq);
    }
    b.logit_rows.push_back(static_cast<int32_t>(b.tokens.size()) - 1);
  }
  return b;
}

// Room for the two sequences of make_step.
KvCacheShape two_sequence_cache(const ModelConfig& config) {
  return {config.num_hidden_layers, 2 * kBlocksPerSeq, kBlockSize, config.num_key_value_heads, config.head_dim};
}

std::vector<int32_t> range(int32_t first, int32_t count) {
  std::vector<int32_t> v;
  for (int32_t i = 0; i < count; ++i) v.push_back(first + i);
  return v;
}

// A pure prefill step, a pure decode step, a decode token beside a prefill chunk at 6, the same
// with the order swapped, then decode steps of one shape (run eagerly once, then recorded as a CUDA
// graph, then replayed). Every position a step reads was written by an earlier one.
std::vector<StepBatch> mixed_steps(int64_t vocab) {
  std::vector<StepBatch> steps = {
      make_step({{0, range(0, 37)}, {1, range(0, 5)}}, vocab),
      make_step({{0, {37}}, {1, {5}}}, vocab),
      make_step({{0, {38}}, {1, range(6, 40)}}, vocab),
      make_step({{1, {46}}, {0, range(39, 3)}}, vocab),
  };
  for (int32_t i = 0; i < 6; ++i) steps.push_back(make_step({{0, {42 + i}}, {1, {47 + i}}}, vocab));
  return steps;
}

// norm_stddev > 0: norm weights spread that far around 1 instead of 0.02, so a norm weight lost
// or applied twice on the way (the CUDA backend folds it into the next projection) shows.
void check_shape(const ModelConfig& config, const std::string& what, float norm_stddev = 0.0f) {
  CpuBackend cpu;
  std::vector<DeviceTensor> storage;
  LlamaWeights weights = make_random_weights(config, cpu, storage, 1234);
  if (norm_stddev > 0.0f) {
    uint64_t seed = 99;
    for (LayerWeights& l : weights.layers) {
      cpu.fill_random(l.input_norm, seed++, 1.0f, norm_stddev);
      cpu.fill_random(l.post_attn_norm, seed++, 1.0f, norm_stddev);
    }
    cpu.fill_random(weights.final_norm, seed, 1.0f, norm_stddev);
  }
  LlamaModel cpu_model(config, weights, cpu, WeightPlacement::kOnBackend);
  const KvCacheShape kv = two_sequence_cache(config);
  cpu.init_kv_cache(kv);
  for (DType dt : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(what + " " + dtype_name(dt));
    cpu.init_kv_cache(kv);
    cuda::CudaBackend gpu(0, dt);
    LlamaModel gpu_model(config, weights, gpu, WeightPlacement::kHost);
    gpu.init_kv_cache(kv);
    const std::vector<StepBatch> steps = mixed_steps(config.vocab_size);
    for (size_t i = 0; i < steps.size(); ++i) {
      SCOPED_TRACE("step " + std::to_string(i));
      std::vector<float> want, got;
      cpu_model.forward(steps[i], want);
      gpu_model.forward(steps[i], got);
      ASSERT_EQ(got.size(), want.size());
      const std::vector<double> want_d(want.begin(), want.end());
      EXPECT_LT(test::scaled_max_error(got, want_d), dt == DType::kF16 ? 1e-2 : 4e-2);
    }
  }
}

TEST(GpuModelShapes, HeadDim64GqaMatchesCpu) {
  FDPP_REQUIRE_GPU();
  check_shape(named_model_shape("tiny"), "tiny hd64 gqa2");
}

// Steps of 2 to 42 rows: the norm rides in the GEMV / flat GEMM prologue, or (cuBLASLt rows, up to
// 64) is applied after the product by qkv_store and the interleaved silu_mul.
TEST(GpuModelShapes, NormWeightsFarFromOneMatchCpu) {
  FDPP_REQUIRE_GPU();
  check_shape(named_model_shape("tiny"), "tiny, norm weights 1 +- 0.5", 0.5f);
}

// The tiny shape widened to 4 query heads of head_dim 128.
ModelConfig head_dim_128_shape(int64_t kv_heads, bool attention_bias) {
  ModelConfig c = named_model_shape("tiny");
  c.hidden_size = 512;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.head_dim = 128;
  c.attention_bias = attention_bias;
  return c;
}

TEST(GpuModelShapes, HeadDim128Gqa4WithBiasMatchesCpu) {
  FDPP_REQUIRE_GPU();
  check_shape(head_dim_128_shape(1, true), "hd128 gqa4 bias");
}

TEST(GpuModelShapes, HeadDim128MhaMatchesCpu) {
  FDPP_REQUIRE_GPU();
  check_shape(head_dim_128_shape(4, false), "hd128 mha");
}

// Programmatic dependent launch (backend/cuda/launch.cuh) overlaps each kernel's start with the
// previous kernel's end. Every step of mixed_steps (prefill, mixed, and decode steps replayed
// from CUDA graphs), through split-KV attention (head dim 128, MHA), must give the same logits
// bit for bit with it on and off (and off twice: the steps are deterministic to begin with).
TEST(GpuModelShapes, ProgrammaticLaunchChangesNoBits) {
  FDPP_REQUIRE_GPU();
  const ModelConfig config = head_dim_128_shape(4, false);
  CpuBackend cpu;
  std::vector<DeviceTensor> storage;
  const LlamaWeights weights = make_random_weights(config, cpu, storage, 4321);
  const KvCacheShape kv = two_sequence_cache(config);
  const std::vector<StepBatch> steps = mixed_steps(config.vocab_size);
  std::vector<std::vector<std::vector<float>>> runs;
  for (bool pdl : {false, false, true}) {
    cuda::set_programmatic_launch(pdl);
    cuda::CudaBackend gpu(0, DType::kF16);
    LlamaModel model(config, weights, gpu, WeightPlacement::kHost);
    gpu.init_kv_cache(kv);
    runs.emplace_back();
    for (const StepBatch& step : steps) {
      runs.back().emplace_back();
      model.forward(step, runs.back().back());
    }
  }
  cuda::set_programmatic_launch(true);
  auto non_finite = [](const std::vector<float>& v) {
    return std::count_if(v.begin(), v.end(), [](float f) { return !std::isfinite(f); });
  };
  auto same_bits = [](const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(non_finite(runs[0][i]), 0) << "step " << i;
    EXPECT_TRUE(same_bits(runs[0][i], runs[1][i])) << "PDL off twice, step " << i;
    EXPECT_TRUE(same_bits(runs[0][i], runs[2][i])) << "PDL off vs on, step " << i;
  }
}

// The same weights reaching the GPU three ways must give the same logits: as CPU-made fp32 views
// that lie back to back (fused without a copy), as separate fp32 copies (fused through a host
// copy, the checkpoint path), and as fp16 host copies (no conversion on upload). It caught the
// upload race of 2026-11-23: the fp32 -> fp16 conversion kernel ran on the backend's stream while
// cudaMemcpy's pageable copy into its staging buffer was still landing on the legacy stream.
TEST(GpuModelShapes, WeightPathsAgreeOnTheGpu) {
  FDPP_REQUIRE_GPU();
  const ModelConfig config = named_model_shape("tiny");
  CpuBackend cpu;
  std::vector<DeviceTensor> storage;
  const LlamaWeights adjacent = make_random_weights(config, cpu, storage, 1234);
  std::vector<std::vector<float>> f32_copies;
  std::vector<std::vector<uint16_t>> f16_copies;
  f32_copies.reserve(64);
  f16_copies.reserve(64);
  auto copy32 = [&](const TensorView& t) {
    if (t.empty()) return t;
    const auto* p = static_cast<const float*>(t.data);
    f32_copies.emplace_back(p, p + t.numel());
    TensorView v = t;
    v.data = f32_copies.back().data();
    return v;
  };
  auto copy16 = [&](const TensorView& t) {
    if (t.empty()) return t;
    const auto* p = static_cast<const float*>(t.data);
    f16_copies.emplace_back(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) f16_copies.back()[static_cast<size_t>(i)] = float_to_half(p[i]);
    TensorView v = t;
    v.data = f16_copies.back().data();
    v.dtype = DType::kF16;
    return v;
  };
  auto rebuild = [&](auto&& copy) {
    LlamaWeights w = adjacent;
    w.embed = copy(adjacent.embed);
    w.final_norm = copy(adjacent.final_norm);
    w.lm_head = copy(adjacent.lm_head);
    for (LayerWeights& l : w.layers)
      for (TensorView* t : {&l.input_norm, &l.wq, &l.wk, &l.wv, &l.bq, &l.bk, &l.bv, &l.wo, &l.post_attn_norm,
                            &l.w_gate, &l.w_up, &l.w_down})
        *t = copy(*t);
    return w;
  };
  const LlamaWeights separate = rebuild(copy32);
  const LlamaWeights half = rebuild(copy16);
  const KvCacheShape kv = two_sequence_cache(config);
  const StepBatch step = make_step({{0, range(0, 37)}, {1, range(0, 5)}}, config.vocab_size);
  std::vector<std::vector<float>> logits;
  for (const LlamaWeights* w : {&adjacent, &separate, &half}) {
    cuda::CudaBackend gpu(0, DType::kF16);
    LlamaModel model(config, *w, gpu, WeightPlacement::kHost);
    gpu.init_kv_cache(kv);
    logits.emplace_back();
    model.forward(step, logits.back());
  }
  const std::vector<double> ref(logits[1].begin(), logits[1].end());
  EXPECT_LT(test::scaled_max_error(logits[0], ref), 1e-3) << "adjacent fp32 views vs separate fp32 copies";
  EXPECT_LT(test::scaled_max_error(logits[2], ref), 1e-3) << "fp16 host copies vs separate fp32 copies";
}

// Step layouts one at a time against the CPU: one sequence or two, identity or interleaved block
// tables, prefill or a single token. Prints each layout's error and checks every one, so a
// failing device run shows the whole pattern rather than the first failure.
TEST(GpuModelShapes, StepLayoutsMatchCpu) {
  FDPP_REQUIRE_GPU();
  const ModelConfig config = named_model_shape("tiny");
  CpuBackend cpu;
  std::vector<DeviceTensor> storage;
  const LlamaWeights weights = make_random_weights(config, cpu, storage, 1234);
  LlamaModel cpu_model(config, weights, cpu, WeightPlacement::kOnBackend);
  cuda::CudaBackend gpu(0, DType::kF16);
  LlamaModel gpu_model(config, weights, gpu, WeightPlacement::kHost);
  const KvCacheShape kv = two_sequence_cache(config);
  struct Layout {
    const char* name;
    std::vector<std::pair<int32_t, std::vector<int32_t>>> seqs;
    bool identity_tables;
  };
  const std::vector<Layout> layouts = {
      {"one token, one seq, identity", {{0, {0}}}, true},
      {"prefill 2, one seq, identity", {{0, range(0, 2)}}, true},
      {"prefill 37, one seq, identity", {{0, range(0, 37)}}, true},
      {"prefill 37, one seq, interleaved", {{0, range(0, 37)}}, false},
      {"prefill 37+5, two seqs, identity", {{0, range(0, 37)}, {1, range(0, 5)}}, true},
      {"prefill 37+5, two seqs, interleaved", {{0, range(0, 37)}, {1, range(0, 5)}}, false},
  };
  for (const Layout& layout : layouts) {
    cpu.init_kv_cache(kv);
    gpu.init_kv_cache(kv);
    StepBatch step = make_step(layout.seqs, config.vocab_size);
    if (layout.identity_tables)
      for (size_t i = 0; i < step.block_tables.size(); ++i) step.block_tables[i] = static_cast<int32_t>(i);
    std::vector<float> want, got;
    cpu_model.forward(step, want);
    gpu_model.forward(step, got);
    ASSERT_EQ(got.size(), want.size());
    const double err = test::scaled_max_error(got, std::vector<double>(want.begin(), want.end()));
    std::printf("[layout] %-40s scaled error %.3e  cpu[0..2] %+.4f %+.4f %+.4f  gpu[0..2] %+.4f %+.4f %+.4f\n",
                layout.name, err, want[0], want[1], want[2], got[0], got[1], got[2]);
    EXPECT_LT(err, 1e-2) << layout.name;
  }
}

}  // namespace
}  // namespace fdpp

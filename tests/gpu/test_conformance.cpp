// Conformance against Hugging Face transformers at real model sizes (random weights): every
// directory in FDPP_CONFORMANCE_DIRS (':'-separated) holds a checkpoint written by
// tools/make_random_llama.py and golden logits by tools/hf_golden.py. Skipped when unset.
//
// Metric, per position of prompt + HF's 64 greedy tokens (teacher forcing, one prefill step):
//  - relative L2 error ||ours - hf|| / ||hf|| <= 1e-2 against HF in the checkpoint's dtype (fp16,
//    bf16: 2e-2) and against HF in fp32;
//  - top-1 agreement with HF wherever HF's top-2 margin exceeds 4x the row's RMS difference.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/cuda/cuda_backend.h"
#include "gpu/gpu_test_util.h"
#include "model/config.h"
#include "model/llama_model.h"
#include "model/weight_store.h"
#include "model/weights.h"

namespace fdpp {
namespace {

std::vector<std::string> conformance_dirs() {
  std::vector<std::string> dirs;
  const char* env = std::getenv("FDPP_CONFORMANCE_DIRS");
  if (env == nullptr) return dirs;
  std::stringstream ss(env);
  for (std::string d; std::getline(ss, d, ':');)
    if (!d.empty()) dirs.push_back(d);
  return dirs;
}

std::vector<float> read_floats(const std::filesystem::path& path, size_t n) {
  std::vector<float> v(n);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)));
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  return v;
}

struct RowStats {
  double worst_rel_l2 = 0;
  int top1_checked = 0, top1_agree = 0;
};

RowStats compare(const std::vector<float>& ours, const std::vector<float>& hf, size_t rows, size_t vocab) {
  RowStats st;
  for (size_t r = 0; r < rows; ++r) {
    const float* a = ours.data() + r * vocab;
    const float* b = hf.data() + r * vocab;
    double diff2 = 0, ref2 = 0;
    size_t top = 0, second = 1, ours_top = 0;
    for (size_t i = 0; i < vocab; ++i) {
      diff2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
      ref2 += double(b[i]) * b[i];
      if (a[i] > a[ours_top]) ours_top = i;
      if (b[i] > b[top]) { second = top; top = i; }
      else if (i != top && (b[i] > b[second] || second == top)) second = i;
    }
    st.worst_rel_l2 = std::max(st.worst_rel_l2, std::sqrt(diff2 / std::max(ref2, 1e-30)));
    const double rms = std::sqrt(diff2 / static_cast<double>(vocab));
    if (b[top] - b[second] > 4 * rms) {
      ++st.top1_checked;
      st.top1_agree += ours_top == top ? 1 : 0;
    }
  }
  return st;
}

TEST(GpuConformance, LogitsMatchHuggingFaceAtRealSizes) {
  FDPP_REQUIRE_GPU();
  const auto dirs = conformance_dirs();
  if (dirs.empty()) GTEST_SKIP() << "FDPP_CONFORMANCE_DIRS is not set (tools/device_conformance.sh sets it)";
  for (const std::string& dir : dirs) {
    const auto meta = nlohmann::json::parse(std::ifstream(std::filesystem::path(dir) / "golden" / "meta.json"));
    const std::string dtype = meta["dtype"];
    const ModelConfig config = load_model_config(dir);
    const WeightStore store = WeightStore::open(dir);
    cuda::CudaBackend backend(0, dtype == "bfloat16" ? DType::kBF16 : DType::kF16);
    LlamaModel model(config, bind_llama_weights(store, config), backend);
    const auto vocab = static_cast<size_t>(config.vocab_size);
    for (size_t p = 0; p < meta["prompts"].size(); ++p) {
      const auto seq = meta["prompts"][p]["sequence"].get<std::vector<int32_t>>();
      const int64_t n = static_cast<int64_t>(seq.size());
      backend.init_kv_cache({config.num_hidden_layers, (n + 15) / 16, 16, config.num_key_value_heads, config.head_dim});
      StepBatch b;
      b.tokens = seq;
      for (int64_t i = 0; i < n; ++i) {
        b.positions.push_back(static_cast<int32_t>(i));
        b.token_seq.push_back(0);
        b.logit_rows.push_back(static_cast<int32_t>(i));
      }
      for (int64_t k = 0; k < (n + 15) / 16; ++k) b.block_tables.push_back(static_cast<int32_t>(k));
      b.max_blocks_per_seq = static_cast<int32_t>((n + 15) / 16);
      std::vector<float> logits;
      model.forward(b, logits);
      for (const std::string ref : {dtype, std::string("float32")}) {
        const auto hf = read_floats(std::filesystem::path(dir) / "golden" /
                                        ("logits_" + std::to_string(p) + "_" + ref + ".bin"),
                                    static_cast<size_t>(n) * vocab);
        const RowStats st = compare(logits, hf, static_cast<size_t>(n), vocab);
        const double tol = dtype == "bfloat16" ? 2e-2 : 1e-2;
        EXPECT_LT(st.worst_rel_l2, tol) << dir << " prompt " << p << " vs HF " << ref;
        EXPECT_EQ(st.top1_agree, st.top1_checked) << dir << " prompt " << p << " vs HF " << ref;
        std::printf("%s prompt %zu vs HF %s: worst relative L2 %.2e, top-1 %d/%d where the margin is clear\n",
                    dir.c_str(), p, ref.c_str(), st.worst_rel_l2, st.top1_agree, st.top1_checked);
      }
    }
  }
}

}  // namespace
}  // namespace fdpp

// fdpp calibrate: runs prompts through the model on the CPU reference backend, records every
// scaled attention score per layer, and writes FlashDecoding++'s unified max value phi and the
// range [lo, hi] per layer to DIR/softmax_range.json, which the GPU runtime loads.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "commands.h"
#include "core/progress.h"
#include "fdpp/status.h"
#include "model/config.h"
#include "model/llama_model.h"
#include "model/weight_store.h"
#include "model/weights.h"
#include "runtime/sampler.h"
#include "runtime/softmax_calibration.h"
#include "tokenizer/tokenizer.h"

namespace fdpp::cli {
namespace {

// Varied text when no prompt file is given: narrative, dialogue, code, lists, numbers.
const std::vector<std::string> kDefaultPrompts = {
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "The committee reviewed the quarterly report and concluded that revenue had grown by",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n",
    "Q: What is the capital of France?\nA: Paris.\nQ: What is the largest planet?\nA:",
    "Ingredients: 2 cups flour, 1 cup sugar, 3 eggs. Steps: 1. Preheat the oven to 180 degrees. 2.",
    "\"Where were you last night?\" she asked. He looked away and said,",
    "The mitochondria is the powerhouse of the cell. It produces energy in the form of",
    "1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377,",
};

struct CalibrateArgs {
  std::string model_dir;
  std::string prompts_file;
  std::string output;
  int32_t generate = 32;
};

std::vector<std::string> read_prompts(const std::string& file) {
  if (file.empty()) return kDefaultPrompts;
  std::ifstream f(file);
  if (!f) throw Error(ErrorCode::kNotFound, fmt::format("--prompts: cannot open '{}'", file));
  std::vector<std::string> prompts;
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) prompts.push_back(line);
  if (prompts.empty()) throw Error(ErrorCode::kInvalidArgument, fmt::format("--prompts: '{}' has no prompts", file));
  return prompts;
}

void run_calibrate(const CalibrateArgs& a) {
  if (a.generate < 0)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--generate must be >= 0, found {}", a.generate));
  const ModelConfig config = load_model_config(a.model_dir);
  const Tokenizer tokenizer = Tokenizer::load(a.model_dir);
  const WeightStore store = WeightStore::open(a.model_dir);
  const std::vector<std::string> prompts = read_prompts(a.prompts_file);

  CpuBackend backend;
  LlamaModel model(config, bind_llama_weights(store, config), backend);
  const int64_t context = config.context_limit();
  constexpr int64_t kBlock = 16;
  const int64_t blocks = (context + kBlock - 1) / kBlock;
  backend.init_kv_cache({config.num_hidden_layers, blocks, kBlock, config.num_key_value_heads, config.head_dim});
  std::vector<Histogram> scores(static_cast<size_t>(config.num_hidden_layers));
  backend.record_scores(&scores);

  ProgressBar bar("calibrating", prompts.size(), "prompts");
  std::vector<float> logits;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> tokens = tokenizer.encode(prompts[i]);
    if (static_cast<int64_t>(tokens.size()) >= context) tokens.resize(static_cast<size_t>(context - 1));
    const int64_t total = std::min<int64_t>(context, static_cast<int64_t>(tokens.size()) + a.generate);
    StepBatch step;
    step.max_blocks_per_seq = static_cast<int32_t>(blocks);
    for (int64_t b = 0; b < blocks; ++b) step.block_tables.push_back(static_cast<int32_t>(b));
    // Prefill the prompt, then extend it greedily one token at a time (decode-time scores).
    std::vector<int32_t> pending = tokens;
    int64_t position = 0;
    while (true) {
      step.tokens = pending;
      step.positions.clear();
      step.token_seq.assign(pending.size(), 0);
      for (size_t j = 0; j < pending.size(); ++j) step.positions.push_back(static_cast<int32_t>(position + j));
      step.logit_rows = {static_cast<int32_t>(pending.size() - 1)};
      model.forward(step, logits);
      position += static_cast<int64_t>(pending.size());
      if (position >= total) break;
      pending = {argmax(logits)};
    }
    bar.update(i + 1);
  }
  bar.finish();

  const SoftmaxCalibration c = calibrate(scores);
  const std::string out = a.output.empty() ? (std::filesystem::path(a.model_dir) / kSoftmaxRangeFile).string() : a.output;
  write_softmax_calibration(out, c);
  fmt::print("{} scores from {} prompts: 99.99% within [{:.2f}, {:.2f}] (min {:.2f}, max {:.2f})\n", c.model.samples,
             prompts.size(), c.model.observed_low, c.model.observed_high, c.model.min, c.model.max);
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const auto& s = c.layers[l];
    fmt::print("layer {:3}: phi {:7.2f}  range [{:7.2f}, {:7.2f}]  observed [{:7.2f}, {:7.2f}]  coverage {:.6f}{}\n", l,
               s.range.phi, s.range.lo, s.range.hi, s.observed_low, s.observed_high, s.coverage,
               s.coverage < 0.9999 ? "  (below 99.99%: this layer's scores spread wider than the safe window)" : "");
  }
  fmt::print("wrote {}\n", out);
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto args = std::make_shared<CalibrateArgs>();
  CLI::App* cmd = app.add_subcommand("calibrate",
                                     "Measure attention-score statistics and write the softmax range file "
                                     "(FlashDecoding++ unified max value) for the GPU runtime");
  cmd->add_option("-m,--model", args->model_dir, "Model directory")->required();
  cmd->add_option("--prompts", args->prompts_file, "Text file, one prompt per line (default: built-in prompts)");
  cmd->add_option("-n,--generate", args->generate, "Greedy tokens generated after each prompt")->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Output file (default: DIR/softmax_range.json)");
  cmd->callback([args] { run_calibrate(*args); });
}

}  // namespace fdpp::cli

// fdpp generate: prompt in, streamed text out, a one-line speed summary on stderr.
#include <fmt/format.h>

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "fdpp/engine.h"
#include "model/config.h"
#include "speed_summary.h"
#include "tokenizer/tokenizer.h"

namespace fdpp::cli {
namespace {

struct GenerateArgs {
  std::string model_dir;
  std::string prompt;
  int32_t max_tokens = 256;
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repetition_penalty = 1.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::string backend = "auto";
  std::string dtype = "auto";
  bool ignore_eos = false;
  bool no_progress = false;
  bool no_echo = false;
};

void run_generate(const GenerateArgs& a) {
  if (a.max_tokens <= 0)
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("-n/--max-tokens must be at least 1, found {}", a.max_tokens));
  EngineOptions options;
  options.model_dir = a.model_dir;
  options.backend = a.backend;
  options.dtype = a.dtype;
  options.show_progress = !a.no_progress;
  auto engine = Engine::create(options);

  GenerationRequest request;
  try {
    request.prompt = engine->tokenizer().encode(a.prompt);
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("prompt: {}", e.what()));
  }
  const auto n_prompt = static_cast<int64_t>(request.prompt.size());
  int64_t max_tokens = a.max_tokens;
  if (n_prompt < engine->max_context() && n_prompt + max_tokens > engine->max_context()) {
    max_tokens = engine->max_context() - n_prompt;
    fmt::print(stderr, "fdpp: -n {} capped to {}: the prompt has {} tokens and the context holds {}\n",
               a.max_tokens, max_tokens, n_prompt, engine->max_context());
  }
  request.stop.max_tokens = static_cast<int32_t>(max_tokens);
  request.stop.stop_strings = a.stop;
  request.stop.ignore_eos = a.ignore_eos;
  request.sampling.temperature = a.temperature;
  request.sampling.top_k = a.top_k;
  request.sampling.top_p = a.top_p;
  request.sampling.min_p = a.min_p;
  request.sampling.repetition_penalty = a.repetition_penalty;
  request.sampling.seed = a.seed;

  if (!a.no_echo) {
    std::fputs(a.prompt.c_str(), stdout);
    std::fflush(stdout);
  }
  const GenerationResult result = engine->generate(std::move(request), [](const TokenEvent& ev) {
    if (!ev.text.empty()) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
    }
    return true;
  });
  std::fputc('\n', stdout);
  std::fflush(stdout);
  fmt::print(stderr, "{}\n", format_speed_summary(*engine, result));
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt, streaming it to stdout");
  cmd->add_option("-m,--model", args->model_dir, "Model directory (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("-p,--prompt", args->prompt, "Prompt text (UTF-8)")->required();
  cmd->add_option("-n,--max-tokens", args->max_tokens, "Tokens to generate at most")->capture_default_str();
  cmd->add_option("--temp,--temperature", args->temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "Keep the k most likely tokens; 0 = off")->capture_default_str();
  cmd->add_option("--top-p", args->top_p, "Nucleus sampling threshold; 1 = off")->capture_default_str();
  cmd->add_option("--min-p", args->min_p, "Drop tokens below min-p x the top probability; 0 = off")->capture_default_str();
  cmd->add_option("--repeat-penalty", args->repetition_penalty, "Repetition penalty; 1 = off")->capture_default_str();
  cmd->add_option("-s,--seed", args->seed, "Random seed: the same seed gives the same text");
  cmd->add_option("--stop", args->stop, "Stop when this string is produced (repeatable)");
  cmd->add_option("--backend", args->backend, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--dtype", args->dtype, "GPU activation dtype: auto (bf16 for bf16 checkpoints, else f16), f16, bf16")
      ->capture_default_str();
  cmd->add_flag("--ignore-eos", args->ignore_eos, "Keep generating past end-of-sequence tokens");
  cmd->add_flag("--no-progress", args->no_progress, "No loading progress display");
  cmd->add_flag("--no-echo", args->no_echo, "Do not print the prompt before the generated text");
  cmd->callback([args] { run_generate(*args); });
}

}  // namespace fdpp::cli

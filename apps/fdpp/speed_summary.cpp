#include "speed_summary.h"

#include <fmt/format.h>

namespace fdpp::cli {

std::string format_speed_summary(const Engine& engine, const GenerationResult& result) {
  const RequestStats& s = result.stats;
  std::string line = fmt::format("fdpp [{}]: prompt {} tok in {:.1f} ms ({:.0f} tok/s)", engine.backend_name(),
                                 s.prompt_tokens, s.prefill_seconds * 1e3,
                                 s.prefill_seconds > 0 ? s.prompt_tokens / s.prefill_seconds : 0.0);
  // Decode steps: every generated token after the first costs one step.
  const int64_t steps = s.generated_tokens - 1;
  if (steps <= 0 || s.decode_seconds <= 0) return line + fmt::format(" | generated {} tok", s.generated_tokens);
  const double per_step = s.decode_seconds / static_cast<double>(steps);
  // Bytes one decode step reads: every streamed weight plus the KV cache at the mean context.
  const double mean_context = static_cast<double>(s.prompt_tokens) + static_cast<double>(s.generated_tokens) / 2.0;
  const double bytes = static_cast<double>(engine.weight_bytes_per_step()) +
                       mean_context * static_cast<double>(engine.kv_bytes_per_token());
  const double bandwidth = bytes / per_step;
  line += fmt::format(" | generated {} tok: {:.1f} tok/s, {:.2f} ms/token | {:.2f} GB/s read", s.generated_tokens,
                      1.0 / per_step, per_step * 1e3, bandwidth / 1e9);
  const double ceiling = engine.read_bandwidth_ceiling();
  if (ceiling > 0)
    line += fmt::format(" = {:.1f}% of the {:.2f} TB/s ceiling", 100.0 * bandwidth / ceiling, ceiling / 1e12);
  else
    line += " (no measured bandwidth ceiling for this device)";
  // The asynchronized softmax's slow path: users see how often it ran.
  if (engine.backend_name().rfind("cuda", 0) == 0)
    line += fmt::format(" | softmax fallback rows: {}", engine.load().softmax_fallbacks);
  return line;
}

}  // namespace fdpp::cli

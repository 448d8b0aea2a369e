// fdpp tune: measures the GEMV, the flat GEMM and cuBLASLt for every linear shape of a model (or
// named shapes) over M = 1..--max-m on the present GPU, and writes each shape's inflection points
// m1, m2 (backend/linear_table.h) into the linear table the CUDA backend reads at start. Where the
// sweep would change a shape's choice, whole decode steps with either table decide (the step check).
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/linear_table.h"
#include "backend/linear_tuner.h"
#include "commands.h"
#include "core/progress.h"
#include "fdpp/status.h"
#include "model/config.h"
#include "model/model_shapes.h"
#include "model/weight_store.h"
#include "model/weights.h"
#include "runtime/step_bench_child.h"

namespace fdpp::cli {
namespace {

struct TuneArgs {
  std::string model_dir;
  std::vector<std::string> shapes;
  std::string dtype = "auto";
  std::string output;
  int64_t max_m = 512;
  bool step_check = true;
  int64_t step_rounds = 2;
  int64_t step_context = 1024;
};

// Every M where the GEMV or the flat GEMM can run (the choice among three), then a few larger
// M where cuBLASLt is the only candidate, for the printed table.
std::vector<int64_t> swept_ms(int64_t max_m) {
  std::vector<int64_t> ms;
  for (int64_t m = 1; m <= std::min(max_m, kSmallMKernelsMaxM); ++m) ms.push_back(m);
  for (int64_t m = 2 * kSmallMKernelsMaxM; m <= max_m; m *= 2) ms.push_back(m);
  if (ms.back() != max_m) ms.push_back(max_m);
  return ms;
}

std::string us(double v) { return v > 0 ? fmt::format("{:.1f}", v) : "-"; }

// The step check for one shape: decode steps at every batch where the sweep's inflection `tuned`
// and the table's `current` one choose differently, each table in its own child bench, alternating
// over `rounds` rounds (the mean is kept). Returns the inflection the steps support.
LinearInflection step_check(const TuneArgs& a, const StepBenchTarget& target, const LinearTable& table,
                            const LinearTableKey& key, const LinearInflection& tuned, const LinearInflection& current,
                            const std::string& label) {
  const std::vector<int64_t> batches =
      batches_where_choices_differ(tuned, current, std::min(a.max_m, kSmallMKernelsMaxM));
  if (batches.empty()) return tuned;
  const auto dir = std::filesystem::temp_directory_path();
  const auto pid = static_cast<long>(getpid());
  const std::filesystem::path tuned_path = dir / fmt::format("fdpp-tune-{}-tuned.json", pid);
  const std::filesystem::path current_path = dir / fmt::format("fdpp-tune-{}-current.json", pid);
  LinearTable with_tuned = table, with_current = table;
  with_tuned.set(key, tuned);
  with_current.set(key, current);
  with_tuned.save(tuned_path);
  with_current.save(current_path);
  std::map<int64_t, double> tuned_sum, current_sum;
  std::map<int64_t, int> tuned_n, current_n;
  ProgressBar bar("step check " + label, static_cast<size_t>(2 * a.step_rounds), "runs");
  for (int64_t r = 0; r < a.step_rounds; ++r) {
    for (int side = 0; side < 2; ++side) {  // the first side alternates between rounds
      const bool tuned_side = (side == 0) == (r % 2 == 1);
      for (const auto& [b, ms] : child_decode_step_ms(target, tuned_side ? tuned_path : current_path, batches)) {
        (tuned_side ? tuned_sum : current_sum)[b] += ms;
        ++(tuned_side ? tuned_n : current_n)[b];
      }
      bar.update(static_cast<size_t>(2 * r + side + 1));
    }
  }
  bar.finish();
  std::error_code ignored;
  std::filesystem::remove(tuned_path, ignored);
  std::filesystem::remove(current_path, ignored);

  std::vector<StepComparison> steps;
  for (int64_t b : batches) {
    StepComparison c{b, -1, -1};
    if (tuned_n[b] > 0) c.tuned_ms = tuned_sum[b] / tuned_n[b];
    if (current_n[b] > 0) c.current_ms = current_sum[b] / current_n[b];
    steps.push_back(c);
  }
  const LinearInflection kept = inflection_from_step_times(tuned, current, steps, kStepCheckNoise);
  fmt::print("\nstep check, {}: the sweep's m1 = {}, m2 = {} against the table's m1 = {}, m2 = {} (context {}, "
             "{} rounds): m1 = {}, m2 = {} kept\n",
             label, tuned.m1, tuned.m2, current.m1, current.m2, a.step_context, a.step_rounds, kept.m1, kept.m2);
  fmt::print("| batch | sweep's choice | ms/step | table's choice | ms/step | difference | kept |\n"
             "| ---: | --- | ---: | --- | ---: | ---: | --- |\n");
  for (const StepComparison& c : steps) {
    const bool timed = c.tuned_ms > 0 && c.current_ms > 0;
    fmt::print("| {} | {} | {} | {} | {} | {} | {} |\n", c.batch, linear_impl_name(choose_linear_impl(tuned, c.batch)),
               c.tuned_ms > 0 ? fmt::format("{:.3f}", c.tuned_ms) : "-",
               linear_impl_name(choose_linear_impl(current, c.batch)),
               c.current_ms > 0 ? fmt::format("{:.3f}", c.current_ms) : "-",
               timed ? fmt::format("{:+.2f}%", 100.0 * (c.tuned_ms / c.current_ms - 1)) : "-",
               linear_impl_name(choose_linear_impl(kept, c.batch)));
  }
  return kept;
}

void run_tune(const TuneArgs& a) {
  if (a.model_dir.empty() == a.shapes.empty())
    throw Error(ErrorCode::kInvalidArgument, "give exactly one of -m/--model DIR and --shape NAME[,NAME...]");
  if (a.max_m < 1 || a.max_m > 65536)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--max-m must be in 1..65536, found {}", a.max_m));
  if (a.step_rounds < 1 || a.step_context < 1)
    throw Error(ErrorCode::kInvalidArgument, fmt::format("--step-rounds and --step-context must be positive, found {} "
                                                         "and {}", a.step_rounds, a.step_context));
  std::vector<std::pair<std::string, ModelConfig>> models;
  DType weight_dtype = DType::kF16;
  if (!a.model_dir.empty()) {
    const ModelConfig config = load_model_config(a.model_dir);
    weight_dtype = bind_llama_weights(WeightStore::open(a.model_dir), config).embed.dtype;
    models.emplace_back(a.model_dir, config);
  } else {
    for (const std::string& s : a.shapes) models.emplace_back(s, named_model_shape(s));
  }
  const DType dtype = parse_activation_dtype(a.dtype, weight_dtype);
  auto tuner = create_linear_tuner(dtype);
  const std::filesystem::path path = a.output.empty() ? default_linear_table_path() : std::filesystem::path(a.output);
  LinearTable table = std::filesystem::exists(path) ? LinearTable::load(path) : LinearTable{};

  const std::vector<int64_t> ms = swept_ms(a.max_m);
  const std::set<int64_t> shown = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  std::set<std::pair<int64_t, int64_t>> done;  // shapes shared by several models are tuned once
  fmt::print("# fdpp tune on {}, {}: µs per launch (back to back in a CUDA graph, weights from HBM)\n",
             tuner->gpu_name(), dtype_name(dtype));
  for (const auto& [model_name, config] : models) {
    for (const LinearShape& shape : model_linear_shapes(config)) {
      if (!done.insert({shape.n, shape.k}).second) continue;
      ProgressBar bar(fmt::format("tune {} {} [{}, {}]", model_name, shape.name, shape.n, shape.k), ms.size(), "M");
      const auto timings = tuner->sweep(shape, ms, [&](size_t i) { bar.update(i + 1); });
      bar.finish();
      const LinearInflection swept = inflection_from_timings(timings);
      const LinearTableKey key{tuner->gpu_name(), dtype, shape.n, shape.k};
      const LinearInflection current =
          table.find(key).value_or(builtin_linear_inflection(shape.n, shape.k, shape.gated_silu));
      LinearInflection at = swept;
      if (a.step_check) {
        StepBenchTarget target;
        target.fdpp_binary = std::filesystem::read_symlink("/proc/self/exe");
        (a.model_dir.empty() ? target.shape : target.model_dir) = model_name;
        target.dtype = a.dtype;
        target.context = a.step_context;
        at = step_check(a, target, table, key, swept, current,
                        fmt::format("{} {} [{}, {}]", model_name, shape.name, shape.n, shape.k));
      }
      table.set(key, at);
      fmt::print("\n## {} {} [N {}, K {}]: m1 = {}, m2 = {}{}\n", model_name, shape.name, shape.n, shape.k, at.m1,
                 at.m2, at == swept ? "" : fmt::format(" (the sweep alone: m1 = {}, m2 = {})", swept.m1, swept.m2));
      fmt::print("| M | GEMV µs | flat GEMM µs | cuBLASLt µs | chosen | vs best |\n| ---: | ---: | ---: | ---: | --- | ---: |\n");
      for (const LinearTiming& t : timings) {
        if (!shown.count(t.m)) continue;
        const LinearImpl impl = choose_linear_impl(at, t.m);
        const double chosen = impl == LinearImpl::kGemv ? t.gemv_us : impl == LinearImpl::kFlatGemm ? t.flat_us : t.cublas_us;
        double best = 1e30;
        for (double v : {t.gemv_us, t.flat_us, t.cublas_us})
          if (v > 0) best = std::min(best, v);
        fmt::print("| {} | {} | {} | {} | {} | {} |\n", t.m, us(t.gemv_us), us(t.flat_us), us(t.cublas_us),
                   linear_impl_name(impl), chosen > 0 ? fmt::format("{:+.1f}%", 100.0 * (chosen / best - 1)) : "n/a");
      }
    }
  }
  table.save(path);
  fmt::print("\nwrote {} ({} shapes)\n", path.string(), table.size());
}

}  // namespace

void add_tune_command(CLI::App& app) {
  auto args = std::make_shared<TuneArgs>();
  CLI::App* cmd = app.add_subcommand("tune", "Measure GEMV / flat GEMM / cuBLASLt per linear shape on this GPU and "
                                             "write the inflection points the runtime uses");
  cmd->add_option("-m,--model", args->model_dir, "Model directory (its linear shapes)");
  cmd->add_option("--shape", args->shapes, "Named shapes instead: llama2-7b, llama3-8b, qwen2-7b, mistral-7b, tiny")
      ->delimiter(',');
  cmd->add_option("--dtype", args->dtype, "auto (the checkpoint's, else f16), f16 or bf16")->capture_default_str();
  cmd->add_option("-o,--output", args->output, "Table to update (default: $FDPP_LINEAR_TABLE or ~/.cache/fdpp/linear_table.json)");
  cmd->add_option("--max-m", args->max_m, "Largest M swept")->capture_default_str();
  cmd->add_flag("--step-check,!--no-step-check", args->step_check,
                "Where the sweep changes a shape's choice, time whole decode steps (child `fdpp bench` runs) with "
                "either choice and keep the faster")
      ->capture_default_str();
  cmd->add_option("--step-rounds", args->step_rounds, "Alternating rounds of the step check")->capture_default_str();
  cmd->add_option("--step-context", args->step_context, "KV positions per row in the step check's decode steps")
      ->capture_default_str();
  cmd->callback([args] { run_tune(*args); });
}

}  // namespace fdpp::cli

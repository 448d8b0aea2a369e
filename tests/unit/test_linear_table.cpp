// The heuristic dataflow's table (backend/linear_table.h): choosing by M, the inflection points
// found from a sweep's timings, and the JSON file with its errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "backend/linear_table.h"
#include "backend/linear_tuner.h"
#include "fdpp/status.h"
#include "model/model_shapes.h"

namespace fdpp {
namespace {

std::filesystem::path temp_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("fdpp_linear_table_" + name);
  std::ofstream(path) << text;
  return path;
}

void expect_parse_error(const std::string& text, const std::string& needle) {
  const auto path = temp_file("bad.json", text);
  try {
    LinearTable::load(path);
    FAIL() << "no error for " << text;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kParse) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

TEST(LinearTable, ChoosesByInflectionPoints) {
  const LinearInflection at{2, 48};
  EXPECT_EQ(choose_linear_impl(at, 1), LinearImpl::kGemv);
  EXPECT_EQ(choose_linear_impl(at, 2), LinearImpl::kGemv);
  EXPECT_EQ(choose_linear_impl(at, 3), LinearImpl::kFlatGemm);
  EXPECT_EQ(choose_linear_impl(at, 48), LinearImpl::kFlatGemm);
  EXPECT_EQ(choose_linear_impl(at, 49), LinearImpl::kCublasLt);
  EXPECT_EQ(choose_linear_impl({0, 0}, 1), LinearImpl::kCublasLt);
}

TEST(LinearTable, InflectionPointsFollowTheFastestImplementation) {
  // GEMV fastest for M <= 3, flat GEMM for 4..40, cuBLASLt above; the GEMV cannot run M > 8,
  // the flat GEMM not M > 64.
  std::vector<LinearTiming> t;
  for (int64_t m = 1; m <= 128; ++m) {
    LinearTiming x;
    x.m = m;
    x.gemv_us = m <= 8 ? 10.0 + 2.0 * m : -1;
    x.flat_us = m <= 64 ? 15.0 + 0.5 * m : -1;
    x.cublas_us = 30.0 + 0.1 * m;
    t.push_back(x);
  }
  // gemv < flat while 10 + 2m < 15 + 0.5m, i.e. m < 3.33; flat < cublas while 15 + 0.5m < 30 + 0.1m, m < 37.5
  EXPECT_EQ(inflection_from_timings(t), (LinearInflection{3, 37}));
}

TEST(LinearTable, OneNoisyPointDoesNotMoveTheInflection) {
  std::vector<LinearTiming> t;
  for (int64_t m = 1; m <= 16; ++m) t.push_back({m, m <= 8 ? 10.0 : -1, 20.0, 30.0});
  t[5].flat_us = 9.9;  // M = 6: flat GEMM wins by 1% once
  EXPECT_EQ(inflection_from_timings(t).m1, 8);
}

TEST(LinearTable, NeverChoosesAnImplementationThatCannotRun) {
  std::vector<LinearTiming> t;
  for (int64_t m = 1; m <= 4; ++m) t.push_back({m, -1, -1, 5.0});
  EXPECT_EQ(inflection_from_timings(t), (LinearInflection{0, 0}));
  EXPECT_EQ(inflection_from_timings({}), kDefaultLinearInflection);
}

TEST(LinearTable, SavesAndLoadsEntries) {
  LinearTable table;
  table.set({"NVIDIA H100 80GB HBM3", DType::kF16, 12288, 4096}, {2, 64});
  table.set({"NVIDIA H100 80GB HBM3", DType::kBF16, 4096, 11008}, {1, 32});
  const auto path = std::filesystem::temp_directory_path() / "fdpp_linear_table_dir" / "table.json";
  table.save(path);
  const LinearTable back = LinearTable::load(path);
  EXPECT_EQ(back.size(), 2u);
  EXPECT_EQ(back.find({"NVIDIA H100 80GB HBM3", DType::kBF16, 4096, 11008}), (LinearInflection{1, 32}));
  EXPECT_FALSE(back.find({"NVIDIA H100 80GB HBM3", DType::kF16, 4096, 11008}).has_value());
  EXPECT_EQ(back.find_or_default({"other", DType::kF16, 1, 1}), kDefaultLinearInflection);
}

// Without a table entry: the gated default for the fused gate/up projection, the built-in
// exceptions for Llama-2-7B's down and QKV projections and Llama-3-8B's QKV, the plain default
// elsewhere; a table entry wins.
TEST(LinearTable, BuiltinInflectionsWithoutATableEntry) {
  EXPECT_EQ(builtin_linear_inflection(4096, 11008, false), (LinearInflection{1, 16}));
  EXPECT_EQ(builtin_linear_inflection(12288, 4096, false), (LinearInflection{1, 12}));
  EXPECT_EQ(builtin_linear_inflection(6144, 4096, false), (LinearInflection{0, 8}));
  EXPECT_EQ(choose_linear_impl(builtin_linear_inflection(6144, 4096, false), 1), LinearImpl::kFlatGemm);
  EXPECT_EQ(builtin_linear_inflection(4096, 14336, false), kDefaultLinearInflection);
  EXPECT_EQ(builtin_linear_inflection(4096, 4096, false), kDefaultLinearInflection);
  EXPECT_EQ(builtin_linear_inflection(11008, 4096, false), kDefaultLinearInflection);
  EXPECT_EQ(builtin_linear_inflection(4096, 11008, true), kDefaultGatedLinearInflection);
  EXPECT_EQ(choose_linear_impl(builtin_linear_inflection(4096, 11008, false), 16), LinearImpl::kFlatGemm);
  EXPECT_EQ(choose_linear_impl(builtin_linear_inflection(4096, 11008, false), 17), LinearImpl::kCublasLt);
  EXPECT_EQ(choose_linear_impl(builtin_linear_inflection(4096, 14336, false), 9), LinearImpl::kCublasLt);
  LinearTable table;
  EXPECT_EQ(table.find_or_default({"NVIDIA H100 80GB HBM3", DType::kF16, 4096, 11008}), (LinearInflection{1, 16}));
  table.set({"NVIDIA H100 80GB HBM3", DType::kF16, 4096, 11008}, {1, 8});
  EXPECT_EQ(table.find_or_default({"NVIDIA H100 80GB HBM3", DType::kF16, 4096, 11008}), (LinearInflection{1, 8}));
}

TEST(LinearTable, BatchesWhereChoicesDiffer) {
  // The tuned {2, 16} against the default {1, 8}: the GEMV at 2, the flat GEMM at 9..16.
  const std::vector<int64_t> want = {2, 9, 10, 11, 12, 13, 14, 15, 16};
  EXPECT_EQ(batches_where_choices_differ({2, 16}, kDefaultLinearInflection, 64), want);
  EXPECT_EQ(batches_where_choices_differ({2, 16}, kDefaultLinearInflection, 8), std::vector<int64_t>{2});
  EXPECT_TRUE(batches_where_choices_differ({1, 8}, {1, 8}, 64).empty());
}

// Session 33's H100 case: the sweep wants the GEMV at M = 2 and the flat GEMM up to 16 for
// [4096, 4096]; the steps were slower at 2 and 9-12, faster at 16 by 0.4%.
TEST(LinearTable, StepTimesOverruleTheSweepWhereTheStepDisagrees) {
  const LinearInflection tuned{2, 16}, current{1, 8};
  std::vector<StepComparison> steps = {{2, 5.10, 5.01}, {9, 6.92, 6.71}, {12, 7.46, 7.26}, {16, 6.506, 6.531}};
  // 13..16 are untimed but for 16: with 9-12 against, the monotone best keeps m2 = 8.
  EXPECT_EQ(inflection_from_step_times(tuned, current, steps, 0.003), current);
  // Faster everywhere it was timed (by more than the noise): the tuned entry stands where timed.
  steps = {{2, 4.90, 5.01}, {9, 6.60, 6.71}, {10, 6.6, 6.7}, {11, 6.6, 6.7}, {12, 7.10, 7.26},
           {13, 7.1, 7.2}, {14, 7.1, 7.2}, {15, 7.1, 7.2}, {16, 7.1, 7.2}};
  EXPECT_EQ(inflection_from_step_times(tuned, current, steps, 0.003), tuned);
  // Within the noise the current choice stays: only M = 2 moves.
  for (StepComparison& s : steps)
    if (s.batch > 2) s.tuned_ms = s.current_ms * 0.999;
  EXPECT_EQ(inflection_from_step_times(tuned, current, steps, 0.003), (LinearInflection{2, 8}));
  // A batch the bench skipped (no time) keeps the current choice.
  EXPECT_EQ(inflection_from_step_times(tuned, current, {{2, -1, 5.0}}, 0.003), current);
}

TEST(LinearTable, MalformedFilesNameTheProblem) {
  expect_parse_error("{\"format\": \"x\", \"version\": 1, \"entries\": []}", "'format'");
  expect_parse_error("{\"format\": \"fdpp-linear-table\", \"version\": 7, \"entries\": []}", "'version'");
  expect_parse_error("{\"format\": \"fdpp-linear-table\", \"version\": 1}", "'entries'");
  const std::string head = "{\"format\": \"fdpp-linear-table\", \"version\": 1, \"entries\": [";
  expect_parse_error(head + "{\"gpu\": \"g\", \"dtype\": \"F32\", \"n\": 1, \"k\": 1, \"m1\": 1, \"m2\": 2}]}", "'dtype'");
  expect_parse_error(head + "{\"gpu\": \"g\", \"dtype\": \"F16\", \"n\": 0, \"k\": 1, \"m1\": 1, \"m2\": 2}]}", "'n'");
  expect_parse_error(head + "{\"gpu\": \"g\", \"dtype\": \"F16\", \"n\": 1, \"k\": \"4\", \"m1\": 1, \"m2\": 2}]}", "'k'");
  expect_parse_error(head + "{\"gpu\": \"g\", \"dtype\": \"F16\", \"n\": 1, \"k\": 1, \"m1\": 5, \"m2\": 2}]}", "m1 <= m2");
  expect_parse_error(head + "{\"dtype\": \"F16\", \"n\": 1, \"k\": 1, \"m1\": 1, \"m2\": 2}]}", "entries[0]: field 'gpu'");
  expect_parse_error("{\"format\": ", "malformed JSON");
}

TEST(LinearTable, MissingFileIsNotFound) {
  try {
    LinearTable::load("/nonexistent/fdpp/linear_table.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

// The tuner times the projections whose input the model normalises with the norm included: the
// fused QKV and gate/up projections and the LM head, not O or down.
TEST(LinearTable, ModelShapesMarkTheNormalisedInputs) {
  const std::vector<LinearShape> shapes = model_linear_shapes(named_model_shape("llama2-7b"));
  ASSERT_EQ(shapes.size(), 5u);
  for (const LinearShape& s : shapes) {
    const bool normed = s.name == "qkv" || s.name == "gate_up" || s.name == "lm_head";
    EXPECT_EQ(s.normed_input, normed) << s.name;
    EXPECT_EQ(s.gated_silu, s.name == "gate_up") << s.name;
    // QKV's and gate/up's norms fold into them; the LM head's does not (it may be the embedding).
    EXPECT_EQ(s.folded_norm, s.name == "qkv" || s.name == "gate_up") << s.name;
    EXPECT_EQ(s.deferrable_norm, s.folded_norm) << s.name;  // Llama has no q/k/v bias
  }
  EXPECT_EQ(shapes[0].n, 12288);
  EXPECT_EQ(shapes[0].k, 4096);
  // A q/k/v bias must follow the norm's scale: Qwen2's QKV norm is folded but never deferred.
  const std::vector<LinearShape> qwen = model_linear_shapes(named_model_shape("qwen2-7b"));
  EXPECT_TRUE(qwen[0].folded_norm);
  EXPECT_FALSE(qwen[0].deferrable_norm);
  EXPECT_TRUE(qwen[2].deferrable_norm);
}

}  // namespace
}  // namespace fdpp

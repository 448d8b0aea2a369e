// core/kernel_spans.h: kernel spans summarised as repeated calls (bench_attention --timeline) and
// as decode steps attributed per kernel (fdpp bench --timeline), on spans built here with known
// times.
#include "core/kernel_spans.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fdpp {
namespace {

constexpr const char* kSplit = "_ZN4fdpp4cuda6detail19split_kv_mma_kernelI6__halfLi128ELi3ELb1EEEvNS0_15AttentionParamsIT_EE";
constexpr const char* kMerge = "_ZN4fdpp4cuda6detail12merge_kernelI6__halfEEvNS0_15AttentionParamsIT_EE";

// Calls of a split kernel (8 us) and a merge (starting 1 us before the split ends, ending 2 us
// after it), one every 10 us, the next split starting 1 us before the merge ends (ns).
std::vector<KernelSpan> split_merge_calls(int calls) {
  std::vector<KernelSpan> spans;
  for (int c = 0; c < calls; ++c) {
    const uint64_t t = 100000 + 10000ull * static_cast<uint64_t>(c);
    spans.push_back({kSplit, t, t + 8000});
    spans.push_back({kMerge, t + 7000, t + 10000});
  }
  return spans;
}

TEST(KernelSpans, ShortNamesDropNamespacesTemplateArgumentsAndParameters) {
  EXPECT_EQ(short_kernel_name(kSplit), "split_kv_mma_kernel");
  EXPECT_EQ(short_kernel_name(kMerge), "merge_kernel");
  EXPECT_EQ(short_kernel_name("plain_c_kernel"), "plain_c_kernel");  // not mangled: kept
  // A kernel in an anonymous namespace (CUPTI's name of the backend's fill kernel).
  EXPECT_EQ(short_kernel_name("_ZN4fdpp4cuda12_GLOBAL__N_111fill_kernelI6__halfEEvPT_mff"), "fill_kernel");
  EXPECT_EQ(short_kernel_name("_ZN12_GLOBAL__N_111spin_kernelEy"), "spin_kernel");
}

TEST(KernelSpans, SummarisesRepeatedCalls) {
  const CallTimeline t = summarize_calls(split_merge_calls(12), 2);
  ASSERT_EQ(t.steps.size(), 2u);
  EXPECT_EQ(t.calls, 10);
  EXPECT_EQ(t.steps[0].name, "split_kv_mma_kernel");
  EXPECT_DOUBLE_EQ(t.steps[0].duration_us, 8.0);
  EXPECT_DOUBLE_EQ(t.steps[0].after_prev_us, 8.0);  // previous merge ended at t, this split at t + 8
  EXPECT_EQ(t.steps[1].name, "merge_kernel");
  EXPECT_DOUBLE_EQ(t.steps[1].duration_us, 3.0);
  EXPECT_DOUBLE_EQ(t.steps[1].after_prev_us, 2.0);
  EXPECT_DOUBLE_EQ(t.period_us, 10.0);
}

TEST(KernelSpans, OneKernelCallsAndMedians) {
  std::vector<KernelSpan> spans;
  for (uint64_t c = 0; c < 5; ++c) spans.push_back({kSplit, 1000 * c, 1000 * c + (c == 3 ? 900 : 500)});
  const CallTimeline t = summarize_calls(spans, 0);  // the first call has no predecessor: skipped anyway
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.calls, 4);
  EXPECT_DOUBLE_EQ(t.steps[0].duration_us, 0.5);  // median of 0.5, 0.5, 0.9, 0.5
  EXPECT_DOUBLE_EQ(t.period_us, 1.0);
}

TEST(KernelSpans, NoRepeatingCallGivesNothing) {
  std::vector<KernelSpan> spans = split_merge_calls(6);
  spans.push_back({kSplit, 200000, 208000});  // a call cut short: the names no longer repeat
  EXPECT_EQ(summarize_calls(spans, 1).calls, 0);
  EXPECT_EQ(summarize_calls(split_merge_calls(3), 2).calls, 0);  // too few calls after warm-up
  EXPECT_EQ(summarize_calls({}, 0).calls, 0);
}

// Two steps of a chain: a GEMV (0-10 us), a split kernel launched early under PDL (starts at 8,
// ends at 30), a merge (29-33), then a host gap to the next step's GEMV (40-50), split (48-70),
// merge (69-73) (ns).
std::vector<KernelSpan> two_chain_steps() {
  std::vector<KernelSpan> spans;
  for (uint64_t base : {0ull, 40000ull}) {
    spans.push_back({"gemv_kernel", base, base + 10000});
    spans.push_back({kSplit, base + 8000, base + 30000});
    spans.push_back({kMerge, base + 29000, base + 33000});
  }
  return spans;
}

// In end order the GEMV is charged 10, the split 20, the merge 3; the 7 us gap is idle.
TEST(KernelSpans, StepsAttributedPerKernel) {
  std::vector<KernelSpan> spans = two_chain_steps();
  const StepBreakdown b = attribute_steps(spans, 2);
  EXPECT_EQ(b.steps, 2);
  ASSERT_EQ(b.kernels.size(), 3u);
  EXPECT_EQ(b.kernels[0].name, "split_kv_mma_kernel");  // the largest charge first
  EXPECT_DOUBLE_EQ(b.kernels[0].charged_us_per_step, 20.0);
  EXPECT_DOUBLE_EQ(b.kernels[0].running_us_per_step, 22.0);
  EXPECT_DOUBLE_EQ(b.kernels[0].launches_per_step, 1.0);
  EXPECT_EQ(b.kernels[1].name, "gemv_kernel");
  EXPECT_DOUBLE_EQ(b.kernels[1].charged_us_per_step, 10.0);
  EXPECT_EQ(b.kernels[2].name, "merge_kernel");
  EXPECT_DOUBLE_EQ(b.kernels[2].charged_us_per_step, 3.0);
  EXPECT_DOUBLE_EQ(b.idle_us_per_step, 3.5);     // one 7 us gap over two steps
  EXPECT_DOUBLE_EQ(b.kernels[1].idle_before_us_per_step, 3.5);  // the gap ended at the second GEMV
  EXPECT_DOUBLE_EQ(b.kernels[0].idle_before_us_per_step, 0.0);
  EXPECT_DOUBLE_EQ(b.window_us_per_step, 36.5);  // 0 to 73 us
  double sum = b.idle_us_per_step;
  for (const KernelShare& k : b.kernels) sum += k.charged_us_per_step;
  EXPECT_DOUBLE_EQ(sum, b.window_us_per_step);  // the charges and the idle time cover the window
}

// Host calls beside the same two steps: a graph launch (36-42 us) that overlaps the 33-40 us gap
// by 4 us, and a stream sync (20-34) that overlaps it by 1 us; they change no kernel's charge.
TEST(KernelSpans, HostCallsSummedWithTheirIdleOverlap) {
  std::vector<KernelSpan> spans = two_chain_steps();
  spans.push_back({"cudaStreamSynchronize", 20000, 34000, true});
  spans.push_back({"cudaGraphLaunch", 36000, 42000, true});
  const StepBreakdown b = attribute_steps(spans, 2);
  ASSERT_EQ(b.kernels.size(), 3u);
  EXPECT_DOUBLE_EQ(b.kernels[0].charged_us_per_step, 20.0);
  EXPECT_DOUBLE_EQ(b.idle_us_per_step, 3.5);
  ASSERT_EQ(b.host_calls.size(), 2u);
  EXPECT_EQ(b.host_calls[0].name, "cudaGraphLaunch");  // the most idle time first
  EXPECT_DOUBLE_EQ(b.host_calls[0].calls_per_step, 0.5);
  EXPECT_DOUBLE_EQ(b.host_calls[0].us_per_step, 3.0);
  EXPECT_DOUBLE_EQ(b.host_calls[0].idle_us_per_step, 2.0);
  EXPECT_EQ(b.host_calls[1].name, "cudaStreamSynchronize");
  EXPECT_DOUBLE_EQ(b.host_calls[1].us_per_step, 7.0);
  EXPECT_DOUBLE_EQ(b.host_calls[1].idle_us_per_step, 0.5);
  // The call summary leaves them out too.
  std::vector<KernelSpan> calls = split_merge_calls(12);
  calls.insert(calls.begin() + 5, {"cudaLaunchKernelExC", 100500, 101000, true});
  const CallTimeline t = summarize_calls(calls, 2);
  EXPECT_EQ(t.calls, 10);
  ASSERT_EQ(t.steps.size(), 2u);
}

TEST(KernelSpans, NoSpansOrStepsGiveAnEmptyBreakdown) {
  EXPECT_EQ(attribute_steps({}, 4).steps, 0);
  EXPECT_EQ(attribute_steps({{kSplit, 0, 10}}, 0).steps, 0);
}

}  // namespace
}  // namespace fdpp

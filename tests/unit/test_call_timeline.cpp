// bench/call_timeline.h: kernel spans summarised as repeated calls (what bench_attention
// --timeline prints from CUPTI's records), on spans built here with known times.
#include "call_timeline.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace fdpp::bench {
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

TEST(CallTimeline, ShortNamesDropNamespacesTemplateArgumentsAndParameters) {
  EXPECT_EQ(short_kernel_name(kSplit), "split_kv_mma_kernel");
  EXPECT_EQ(short_kernel_name(kMerge), "merge_kernel");
  EXPECT_EQ(short_kernel_name("plain_c_kernel"), "plain_c_kernel");  // not mangled: kept
}

TEST(CallTimeline, SummarisesRepeatedCalls) {
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

TEST(CallTimeline, OneKernelCallsAndMedians) {
  std::vector<KernelSpan> spans;
  for (uint64_t c = 0; c < 5; ++c) spans.push_back({kSplit, 1000 * c, 1000 * c + (c == 3 ? 900 : 500)});
  const CallTimeline t = summarize_calls(spans, 0);  // the first call has no predecessor: skipped anyway
  ASSERT_EQ(t.steps.size(), 1u);
  EXPECT_EQ(t.calls, 4);
  EXPECT_DOUBLE_EQ(t.steps[0].duration_us, 0.5);  // median of 0.5, 0.5, 0.9, 0.5
  EXPECT_DOUBLE_EQ(t.period_us, 1.0);
}

TEST(CallTimeline, NoRepeatingCallGivesNothing) {
  std::vector<KernelSpan> spans = split_merge_calls(6);
  spans.push_back({kSplit, 200000, 208000});  // a call cut short: the names no longer repeat
  EXPECT_EQ(summarize_calls(spans, 1).calls, 0);
  EXPECT_EQ(summarize_calls(split_merge_calls(3), 2).calls, 0);  // too few calls after warm-up
  EXPECT_EQ(summarize_calls({}, 0).calls, 0);
}

}  // namespace
}  // namespace fdpp::bench

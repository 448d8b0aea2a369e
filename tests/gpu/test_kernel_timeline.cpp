// The CUDA backend's kernel timeline (Backend::start_kernel_timeline, CUPTI's records): the kernels
// it ran while recording come back with their names, in start order, each ending after it starts;
// nothing from before the start or after the stop. Skips where the build or the machine has no
// CUPTI (the reason is the skip message).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_backend.h"
#include "gpu_test_util.h"

namespace fdpp {
namespace {

TEST(GpuKernelTimeline, RecordsTheKernelsRunBetweenStartAndStop) {
  FDPP_REQUIRE_GPU();
  cuda::CudaBackend backend(0, DType::kF16);
  DeviceTensor t = backend.allocate(DType::kF16, {1 << 20});
  backend.fill_random(t.view(), 1, 0.0f, 1.0f);  // before the start: not recorded
  std::string why_not;
  if (!backend.start_kernel_timeline(&why_not)) GTEST_SKIP() << "no kernel timeline: " << why_not;
  constexpr int kLaunches = 3;
  for (int i = 0; i < kLaunches; ++i) backend.fill_random(t.view(), static_cast<uint64_t>(i + 2), 0.0f, 1.0f);
  std::vector<KernelSpan> spans = backend.stop_kernel_timeline();
  backend.fill_random(t.view(), 9, 0.0f, 1.0f);  // after the stop: not recorded
  // The host's CUDA calls come too: at least the launches and fill_random's syncs.
  const auto host_calls = std::count_if(spans.begin(), spans.end(), [](const KernelSpan& s) { return s.host_call; });
  EXPECT_GE(host_calls, 2 * kLaunches);
  for (const KernelSpan& s : spans)
    if (s.host_call) EXPECT_NE(s.name.find("cuda"), std::string::npos) << s.name;
  std::erase_if(spans, [](const KernelSpan& s) { return s.host_call; });
  ASSERT_EQ(spans.size(), static_cast<size_t>(kLaunches)) << "one span per fill_random launch";
  for (size_t i = 0; i < spans.size(); ++i) {
    EXPECT_FALSE(short_kernel_name(spans[i].name).empty());
    EXPECT_EQ(short_kernel_name(spans[i].name), short_kernel_name(spans[0].name));
    EXPECT_LT(spans[i].start_ns, spans[i].end_ns);
    if (i > 0) EXPECT_LE(spans[i - 1].start_ns, spans[i].start_ns);
  }
  const StepBreakdown b = attribute_steps(spans, kLaunches);
  ASSERT_EQ(b.kernels.size(), 1u);
  EXPECT_TRUE(b.host_calls.empty());  // removed above
  EXPECT_DOUBLE_EQ(b.kernels[0].launches_per_step, 1.0);
  EXPECT_GT(b.kernels[0].charged_us_per_step, 0.0);
  // A second recording starts with no kernels (its own host calls only).
  ASSERT_TRUE(backend.start_kernel_timeline(&why_not)) << why_not;
  const std::vector<KernelSpan> second = backend.stop_kernel_timeline();
  EXPECT_TRUE(std::none_of(second.begin(), second.end(), [](const KernelSpan& s) { return !s.host_call; }));
}

}  // namespace
}  // namespace fdpp

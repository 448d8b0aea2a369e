// Start and end times of the kernels a program runs, from CUPTI's activity records of concurrent
// kernels: the timeline of launches queued back to back or replayed in a graph, with programmatic
// dependent launch overlapping them, which ncu cannot show (it serialises kernels and times each
// alone). Benchmarks use it to see where a call's time goes between its kernels.
#pragma once

#include <string>
#include <vector>

#include "call_timeline.h"

namespace fdpp::bench {

// Records every kernel that runs between start() and stop() (one timeline per process at a time).
class KernelTimeline {
 public:
  // Enables the records; returns false with a reason (no CUPTI, or the profiler is taken).
  bool start(std::string* why_not);
  // Flushes and disables the records; the spans since start(), in start order.
  std::vector<KernelSpan> stop();
};

}  // namespace fdpp::bench

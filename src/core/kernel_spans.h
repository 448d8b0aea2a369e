// Kernel spans (start and end on the GPU's clock, as a backend's kernel timeline records them:
// backend/cuda/kernel_timeline.h) and their summaries: as repeated calls of a few kernels (the
// attention bench) and as decode steps attributed per kernel (fdpp bench --timeline). No CUDA
// here, so the CPU tests check it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fdpp {

// One kernel's execution on the GPU: start is when its first block began, end when its last
// finished (ns on the GPU's clock). A kernel launched with programmatic dependent launch starts
// while its predecessor still runs.
// With host_call set, a CUDA runtime call instead: its name (cudaGraphLaunch), from its entry to
// its return on the host, on the same clock.
struct KernelSpan {
  std::string name;  // as CUPTI reports it (mangled)
  uint64_t start_ns = 0, end_ns = 0;
  bool host_call = false;
};

// A summary of spans that repeat one call's kernels in order: per kernel of the call, its median
// duration and the median time from the previous kernel's end to its end (what it adds to the
// call beyond what overlaps), and the call's median period (end to end).
struct CallTimeline {
  struct Step {
    std::string name;          // short_kernel_name
    double duration_us = 0;    // start to end, median over calls
    double after_prev_us = 0;  // the previous kernel's end (for the first, the previous call's
                               // last) to this one's end, median
  };
  std::vector<Step> steps;
  double period_us = 0;  // one call's last kernel end to the next call's, median
  int calls = 0;
};
// Summarises `spans` (start order) as calls: the call is the shortest sequence of kernel names
// that the whole timeline repeats (at most 16 kernels), and the first `warmup_calls` calls are
// skipped. No repeating sequence, or fewer than two calls left, gives calls = 0. Host calls are
// left out.
CallTimeline summarize_calls(const std::vector<KernelSpan>& spans, int warmup_calls);

// A window of decode steps attributed per kernel. The spans are taken as one stream's chain (each
// kernel ends after the one before it, though with programmatic dependent launch it may start
// earlier): in end order, each kernel is charged the time from the previous kernel's end, or from
// its own start if later, to its end, and a gap with no kernel running is charged to idle. The
// charges and the idle time add up to the window, first start to last end. Host calls are summed
// per name beside the kernels, with the part of each that fell in idle time (the GPU waiting while
// the host was in that call).
struct KernelShare {
  std::string name;              // short_kernel_name
  double launches_per_step = 0;
  double charged_us_per_step = 0;
  double running_us_per_step = 0;  // start to end, in full (overlaps counted twice)
  double idle_before_us_per_step = 0;  // the idle time that ended when this kernel started
};
struct HostCallShare {
  std::string name;
  double calls_per_step = 0;
  double us_per_step = 0;       // entry to return
  double idle_us_per_step = 0;  // the part of it with no kernel running
};
struct StepBreakdown {
  std::vector<KernelShare> kernels;       // the largest charge first
  std::vector<HostCallShare> host_calls;  // the most idle time first
  double idle_us_per_step = 0;       // no kernel running (host work, copies, launch gaps)
  double window_us_per_step = 0;
  int steps = 0;
};
StepBreakdown attribute_steps(std::vector<KernelSpan> spans, int steps);

// The kernel name without its template arguments and parameter list ("split_kv_mma_kernel").
std::string short_kernel_name(const std::string& name);

}  // namespace fdpp

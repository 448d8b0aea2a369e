// Start and end times of the kernels a program runs, from CUPTI's activity records of concurrent
// kernels: the timeline of launches queued back to back or replayed in a graph, with programmatic
// dependent launch overlapping them, which ncu cannot show (it serialises kernels and times each
// alone). The CUDA backend's kernel timeline (Backend::start_kernel_timeline) and the attention
// bench use it to see where a step's or a call's time goes between its kernels.
#pragma once

#include <string>
#include <vector>

#include "core/kernel_spans.h"

namespace fdpp::cuda {

// Records every kernel that runs, and every CUDA runtime call the host makes (KernelSpan::
// host_call), from start_kernel_records() to stop_kernel_records() (one
// recording per process at a time). Start synchronises the device first, and returns false with
// the reason where it cannot record (a build without CUPTI, or another profiler holds it); stop
// synchronises the device, flushes and disables the records, and returns the spans in start
// order.
bool start_kernel_records(std::string* why_not);
std::vector<KernelSpan> stop_kernel_records();

}  // namespace fdpp::cuda

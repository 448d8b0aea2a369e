#include "core/kernel_spans.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <iterator>
#include <map>
#include <memory>
#include <string_view>
#include <utility>

namespace fdpp {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

}  // namespace

std::string short_kernel_name(const std::string& name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status),
                                                   std::free);
  std::string s = status == 0 && demangled ? std::string(demangled.get()) : name;
  // "void ns::kernel<args>(params)": drop the return type, the arguments and the namespaces.
  if (s.rfind("void ", 0) == 0) s.erase(0, 5);
  // An anonymous namespace demangles with parentheses, which would end the name at its start.
  constexpr std::string_view kAnonymous = "(anonymous namespace)::";
  for (size_t at = s.find(kAnonymous); at != std::string::npos; at = s.find(kAnonymous, at)) s.erase(at, kAnonymous.size());
  s = s.substr(0, std::min(s.find('<'), s.find('(')));
  if (const size_t colon = s.rfind("::"); colon != std::string::npos) s.erase(0, colon + 2);
  return s;
}

CallTimeline summarize_calls(const std::vector<KernelSpan>& recorded, int warmup_calls) {
  CallTimeline out;
  std::vector<KernelSpan> spans;
  std::copy_if(recorded.begin(), recorded.end(), std::back_inserter(spans),
               [](const KernelSpan& s) { return !s.host_call; });
  std::vector<std::string> names;
  names.reserve(spans.size());
  for (const KernelSpan& span : spans) names.push_back(short_kernel_name(span.name));
  constexpr size_t kMaxKernelsPerCall = 16;
  size_t period = 0;
  for (size_t k = 1; k <= std::min(kMaxKernelsPerCall, names.size()) && period == 0; ++k) {
    if (names.size() % k != 0) continue;
    bool repeats = true;
    for (size_t i = k; i < names.size() && repeats; ++i) repeats = names[i] == names[i - k];
    if (repeats) period = k;
  }
  if (period == 0) return out;
  const size_t calls = names.size() / period;
  const size_t first = static_cast<size_t>(std::max(warmup_calls, 1));  // the first call has no predecessor
  if (calls < first + 2) return out;
  out.calls = static_cast<int>(calls - first);
  std::vector<std::vector<double>> durations(period), after_prev(period);
  std::vector<double> periods;
  for (size_t c = first; c < calls; ++c) {
    for (size_t j = 0; j < period; ++j) {
      const KernelSpan& span = spans[c * period + j];
      const KernelSpan& prev = spans[c * period + j - 1];
      durations[j].push_back(static_cast<double>(span.end_ns - span.start_ns) * 1e-3);
      after_prev[j].push_back((static_cast<double>(span.end_ns) - static_cast<double>(prev.end_ns)) * 1e-3);
    }
    const uint64_t end = spans[c * period + period - 1].end_ns, prev_end = spans[c * period - 1].end_ns;
    periods.push_back((static_cast<double>(end) - static_cast<double>(prev_end)) * 1e-3);
  }
  for (size_t j = 0; j < period; ++j)
    out.steps.push_back({names[j], median(durations[j]), median(after_prev[j])});
  out.period_us = median(periods);
  return out;
}

StepBreakdown attribute_steps(std::vector<KernelSpan> spans, int steps) {
  StepBreakdown out;
  std::vector<KernelSpan> host_calls;
  const auto first_host_call = std::stable_partition(spans.begin(), spans.end(), [](const KernelSpan& s) { return !s.host_call; });
  host_calls.assign(first_host_call, spans.end());
  spans.erase(first_host_call, spans.end());
  if (spans.empty() || steps <= 0) return out;
  out.steps = steps;
  std::stable_sort(spans.begin(), spans.end(),
                   [](const KernelSpan& a, const KernelSpan& b) { return a.end_ns < b.end_ns; });
  std::map<std::string, KernelShare> by_name;
  uint64_t first_start = spans.front().start_ns, prev_end = 0;
  double idle_ns = 0;
  std::vector<std::pair<uint64_t, uint64_t>> idle_gaps;  // [from, to), in time order
  for (size_t i = 0; i < spans.size(); ++i) {
    const KernelSpan& s = spans[i];
    first_start = std::min(first_start, s.start_ns);
    const uint64_t from = i == 0 ? s.start_ns : std::max(prev_end, s.start_ns);
    KernelShare& share = by_name[short_kernel_name(s.name)];
    if (i > 0 && s.start_ns > prev_end) {
      idle_ns += static_cast<double>(s.start_ns - prev_end);
      idle_gaps.emplace_back(prev_end, s.start_ns);
      share.idle_before_us_per_step += static_cast<double>(s.start_ns - prev_end) * 1e-3;
    }
    share.launches_per_step += 1.0;
    share.charged_us_per_step += static_cast<double>(s.end_ns - std::min(from, s.end_ns)) * 1e-3;
    share.running_us_per_step += static_cast<double>(s.end_ns - s.start_ns) * 1e-3;
    prev_end = s.end_ns;
  }
  const double per_step = 1.0 / steps;
  for (auto& [name, share] : by_name) {
    share.name = name;
    share.launches_per_step *= per_step;
    share.charged_us_per_step *= per_step;
    share.running_us_per_step *= per_step;
    share.idle_before_us_per_step *= per_step;
    out.kernels.push_back(share);
  }
  std::stable_sort(out.kernels.begin(), out.kernels.end(), [](const KernelShare& a, const KernelShare& b) {
    return a.charged_us_per_step > b.charged_us_per_step;
  });
  std::map<std::string, HostCallShare> calls_by_name;
  for (const KernelSpan& h : host_calls) {
    HostCallShare& share = calls_by_name[h.name];
    share.calls_per_step += per_step;
    share.us_per_step += static_cast<double>(h.end_ns - std::min(h.start_ns, h.end_ns)) * 1e-3 * per_step;
    for (const auto& [from, to] : idle_gaps) {
      const uint64_t a = std::max(from, h.start_ns), b = std::min(to, h.end_ns);
      if (a < b) share.idle_us_per_step += static_cast<double>(b - a) * 1e-3 * per_step;
    }
  }
  for (auto& [name, share] : calls_by_name) {
    share.name = name;
    out.host_calls.push_back(share);
  }
  std::stable_sort(out.host_calls.begin(), out.host_calls.end(), [](const HostCallShare& a, const HostCallShare& b) {
    return a.idle_us_per_step > b.idle_us_per_step;
  });
  out.idle_us_per_step = idle_ns * 1e-3 * per_step;
  out.window_us_per_step = static_cast<double>(spans.back().end_ns - first_start) * 1e-3 * per_step;
  return out;
}

}  // namespace fdpp

#include "backend/cuda/kernel_timeline.h"

#include <cuda_runtime.h>

#if FDPP_HAVE_CUPTI
#include <cupti.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <utility>

namespace fdpp::cuda {
namespace {

// CUPTI hands records over in buffers it asks for and returns from its own threads.
std::mutex g_mutex;
std::vector<KernelSpan> g_spans;

constexpr size_t kBufferBytes = size_t{1} << 20;
constexpr size_t kBufferAlign = 8;  // CUPTI's requirement for activity buffers

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlign, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

// "cudaGraphLaunch" for CUPTI's "cudaGraphLaunch_v10000".
std::string runtime_call_name(CUpti_CallbackId cbid) {
  const char* name = nullptr;
  if (cuptiGetCallbackName(CUPTI_CB_DOMAIN_RUNTIME_API, cbid, &name) != CUPTI_SUCCESS || name == nullptr)
    return "cuda runtime call " + std::to_string(cbid);
  std::string s = name;
  if (const size_t v = s.rfind("_v"); v != std::string::npos && v + 2 < s.size() &&
                                       s.find_first_not_of("0123456789", v + 2) == std::string::npos)
    s.erase(v);
  return s;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid_bytes) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    CUpti_Activity* record = nullptr;
    while (cuptiActivityGetNextRecord(buffer, valid_bytes, &record) == CUPTI_SUCCESS) {
      if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
        const auto* kernel = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        g_spans.push_back({kernel->name != nullptr ? kernel->name : "?", kernel->start, kernel->end});
      } else if (record->kind == CUPTI_ACTIVITY_KIND_RUNTIME) {
        const auto* call = reinterpret_cast<const CUpti_ActivityAPI*>(record);
        g_spans.push_back({runtime_call_name(call->cbid), call->start, call->end, true});
      }
    }
  }
  std::free(buffer);
}

std::string cupti_error(CUptiResult result) {
  const char* text = nullptr;
  if (cuptiGetResultString(result, &text) != CUPTI_SUCCESS || text == nullptr) return "CUPTI error";
  return text;
}

}  // namespace

bool start_kernel_records(std::string* why_not) {
  (void)cudaDeviceSynchronize();  // earlier work stays out of the records
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_spans.clear();
  }
  static const CUptiResult registered = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);  // once
  CUptiResult result = registered;
  if (result == CUPTI_SUCCESS) result = cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  if (result == CUPTI_SUCCESS) result = cuptiActivityEnable(CUPTI_ACTIVITY_KIND_RUNTIME);
  if (result != CUPTI_SUCCESS) {
    if (why_not != nullptr) *why_not = cupti_error(result);
    return false;
  }
  return true;
}

std::vector<KernelSpan> stop_kernel_records() {
  (void)cudaDeviceSynchronize();
  (void)cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  (void)cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  (void)cuptiActivityDisable(CUPTI_ACTIVITY_KIND_RUNTIME);
  std::vector<KernelSpan> spans;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    spans = std::move(g_spans);
    g_spans.clear();
  }
  std::stable_sort(spans.begin(), spans.end(),
                   [](const KernelSpan& a, const KernelSpan& b) { return a.start_ns < b.start_ns; });
  return spans;
}

}  // namespace fdpp::cuda

#else  // no CUPTI in this build: nothing is recorded, and the start says why

namespace fdpp::cuda {

bool start_kernel_records(std::string* why_not) {
  if (why_not != nullptr) *why_not = "this build has no CUPTI (CMake found no CUDA::cupti)";
  return false;
}

std::vector<KernelSpan> stop_kernel_records() { return {}; }

}  // namespace fdpp::cuda

#endif

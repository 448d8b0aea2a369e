#include "backend/cuda/step_graphs.h"

#include "backend/cuda/cuda_check.h"

namespace fdpp::cuda {

bool StepGraphs::launch(const StepGraphKey& key, cudaStream_t stream) {
  const auto it = graphs_.find(key);
  if (it == graphs_.end()) return false;
  check(cudaGraphLaunch(it->second, stream), "CUDA graph launch");
  return true;
}

void StepGraphs::begin_capture(const StepGraphKey& key, cudaStream_t stream) {
  if (graphs_.size() >= kMaxGraphs) clear();
  // Thread-local: another thread's CUDA calls (the server's) cannot invalidate the capture.
  check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin CUDA graph capture");
  capturing_ = key;
}

void StepGraphs::end_capture_and_launch(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  const StepGraphKey key = *capturing_;
  capturing_.reset();
  check(cudaStreamEndCapture(stream, &graph), "end CUDA graph capture");
  cudaGraphExec_t exec = nullptr;
  const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  check(err, "CUDA graph instantiate");
  graphs_[key] = exec;
  check(cudaGraphLaunch(exec, stream), "CUDA graph launch");
}

void StepGraphs::abandon_capture(cudaStream_t stream) {
  if (!capturing_) return;
  capturing_.reset();
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph != nullptr) cudaGraphDestroy(graph);
  cudaGetLastError();  // the capture's error, already reported by whoever threw
}

void StepGraphs::clear() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
  seen_.clear();
}

}  // namespace fdpp::cuda

// CUDA graphs of whole decode steps: the ~15 launches per layer of a decode step are recorded
// once per step shape and replayed as one graph launch, so the GPU never waits on the host's
// launch calls between kernels (they are 2-4 µs each; a 7B decode step has ~300 of them).
#pragma once

#include <cuda_runtime.h>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

namespace fdpp::cuda {

// Everything a recorded step depends on besides the weights: the model's buffers (model_key),
// the step's token/row/sequence counts (they fix the offsets into the step's metadata buffer)
// and the attention partitioning (grid sizes and the kernel variant are part of a graph).
struct StepGraphKey {
  uint64_t model_key = 0;
  int64_t tokens = 0, rows = 0;
  int32_t max_blocks = 0;
  int32_t num_splits = 0, split_size = 0, mma_stages = 0;
  bool tensor_cores = false, mma_bulk = false, mma_tensor_maps = false, split_pdl = true;
  auto operator<=>(const StepGraphKey&) const = default;
};

class StepGraphs {
 public:
  StepGraphs() = default;
  ~StepGraphs() { clear(); }
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;

  // Launches the graph recorded for key on stream; false when there is none.
  bool launch(const StepGraphKey& key, cudaStream_t stream);
  // Whether a step of this key ran before (true from the second call on). The first step of a
  // shape runs eagerly: what it sets up once (cuBLASLt's timed algorithm choice) cannot run
  // inside a capture.
  bool seen_before(const StepGraphKey& key) {
    if (seen_.size() >= kMaxSeen) seen_.clear();  // bounded like the graphs
    return !seen_.insert(key).second;
  }
  // Starts recording the work enqueued on stream (nothing runs until end_capture()).
  void begin_capture(const StepGraphKey& key, cudaStream_t stream);
  bool capturing() const { return capturing_.has_value(); }
  // Ends the recording, keeps the graph and launches it once (this step's run).
  void end_capture_and_launch(cudaStream_t stream);
  // Ends a recording that failed part-way and drops it.
  void abandon_capture(cudaStream_t stream);
  // Drops every graph: a buffer they read has moved.
  void clear();
  size_t size() const { return graphs_.size(); }

 private:
  // Bounded: a server with changing batch sizes records one graph per shape; old ones are dropped
  // wholesale when the limit is reached (re-recording costs about one eager step).
  static constexpr size_t kMaxGraphs = 64;
  static constexpr size_t kMaxSeen = 4 * kMaxGraphs;
  std::map<StepGraphKey, cudaGraphExec_t> graphs_;
  std::optional<StepGraphKey> capturing_;
  std::set<StepGraphKey> seen_;
};

}  // namespace fdpp::cuda

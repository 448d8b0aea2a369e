// WeightStore: every tensor of a Hugging Face checkpoint directory, memory-mapped.
//
// A directory holds either one model.safetensors, or shards listed by model.safetensors.index.json
// ({"weight_map": {tensor name: shard file name}}). Views are CPU TensorViews into the mappings;
// the store owns the mappings and must outlive every view it hands out.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "model/safetensors.h"

namespace fdpp {

class WeightStore {
 public:
  // Opens DIR/model.safetensors, or else the shards named by DIR/model.safetensors.index.json.
  // Throws fdpp::Error: kNotFound (no checkpoint in DIR, a listed shard missing, a tensor absent
  // from the shard the index names), kParse (malformed index or safetensors file), and the
  // errors of SafetensorsFile::open.
  static WeightStore open(const std::filesystem::path& model_dir);

  WeightStore() = default;
  WeightStore(WeightStore&&) noexcept = default;
  WeightStore& operator=(WeightStore&&) noexcept = default;
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  const TensorView* find(std::string_view name) const;  // nullptr when absent
  const TensorView& get(std::string_view name) const;   // throws kNotFound naming tensor and dir
  std::vector<std::string> names() const;               // sorted
  size_t size() const { return tensors_.size(); }       // number of tensors

  const std::filesystem::path& dir() const { return dir_; }
  const std::vector<SafetensorsFile>& files() const { return files_; }

  // Bytes of the data sections of all files (what prefetch() reads).
  size_t total_bytes() const;

  // Pages every file's data in (madvise WILLNEED, then reads one byte per page), calling
  // progress(done_bytes, total_bytes) as it goes: once with 0 first, once with the total last.
  void prefetch(const std::function<void(size_t done_bytes, size_t total_bytes)>& progress = {}) const;

 private:
  std::filesystem::path dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, TensorView, std::less<>> tensors_;
};

}  // namespace fdpp

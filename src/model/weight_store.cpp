#include "model/weight_store.h"

#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/json_file.h"
#include "fdpp/status.h"

namespace fdpp {

namespace {

using json = nlohmann::json;

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

// A shard name from the index must name a file in the model directory itself.
bool is_plain_file_name(const std::string& name) {
  const std::filesystem::path p(name);
  return !name.empty() && !p.is_absolute() && p.has_filename() && p.filename() == p && name != "." && name != "..";
}

}  // namespace

WeightStore WeightStore::open(const std::filesystem::path& model_dir) {
  WeightStore ws;
  ws.dir_ = model_dir;
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    throw Error(ErrorCode::kNotFound, fmt::format("{}: model directory not found", model_dir.string()));
  }

  const std::filesystem::path single = model_dir / kSingleFile;
  if (std::filesystem::exists(single, ec)) {
    ws.files_.push_back(SafetensorsFile::open(single));
    for (const SafetensorsTensor& t : ws.files_.back().tensors()) ws.tensors_.emplace(t.name, t.view);
    return ws;
  }

  const std::filesystem::path index_path = model_dir / kIndexFile;
  if (!std::filesystem::exists(index_path, ec)) {
    throw Error(ErrorCode::kNotFound, fmt::format("{}: no weights found: expected {} or {} in this directory",
                                                  model_dir.string(), kSingleFile, kIndexFile));
  }
  const std::string index_name = index_path.string();
  const json index = read_json_file(index_path);
  if (!index.is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: expected a JSON object, found {}", index_name, index.type_name()));
  }
  const auto wm = index.find("weight_map");
  if (wm == index.end()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: missing field 'weight_map'", index_name));
  }
  if (!wm->is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: field 'weight_map': expected an object mapping tensor names to "
                                               "shard files, found {}", index_name, show(*wm)));
  }

  // Open each distinct shard once, in sorted order.
  std::map<std::string, size_t> shard_index;  // shard file name -> index in files_
  for (const auto& [tensor, shard] : wm->items()) {
    if (!shard.is_string() || !is_plain_file_name(shard.get<std::string>())) {
      throw Error(ErrorCode::kParse, fmt::format("{}: weight_map['{}']: expected the file name of a shard in the "
                                                 "model directory, found {}", index_name, tensor, show(shard)));
    }
    shard_index.emplace(shard.get<std::string>(), 0);
  }
  for (auto& [shard, idx] : shard_index) {
    const std::filesystem::path shard_path = model_dir / shard;
    if (!std::filesystem::exists(shard_path, ec)) {
      throw Error(ErrorCode::kNotFound, fmt::format("{}: weight_map lists shard '{}', but {} does not exist",
                                                    index_name, shard, shard_path.string()));
    }
    idx = ws.files_.size();
    ws.files_.push_back(SafetensorsFile::open(shard_path));
  }

  // The index decides which shard holds each tensor it lists.
  for (const auto& [tensor, shard] : wm->items()) {
    const std::string shard_name = shard.get<std::string>();
    const SafetensorsFile& file = ws.files_[shard_index.at(shard_name)];
    const SafetensorsTensor* t = file.find(tensor);
    if (t == nullptr) {
      throw Error(ErrorCode::kNotFound, fmt::format("{}: weight_map puts tensor '{}' in shard '{}', but {} has no "
                                                    "such tensor", index_name, tensor, shard_name,
                                                    file.path().string()));
    }
    ws.tensors_.emplace(tensor, t->view);
  }
  // Tensors a shard holds that the index does not list are kept too (so a binder can report
  // them), unless two shards disagree about one.
  std::map<std::string, std::string> unlisted;  // name -> shard
  for (const auto& [shard, idx] : shard_index) {
    for (const SafetensorsTensor& t : ws.files_[idx].tensors()) {
      if (wm->contains(t.name)) continue;
      if (const auto it = unlisted.find(t.name); it != unlisted.end()) {
        throw Error(ErrorCode::kParse, fmt::format("{}: tensor '{}' is in both shard '{}' and shard '{}' and the "
                                                   "weight_map does not say which to use", index_name, t.name,
                                                   it->second, shard));
      }
      unlisted.emplace(t.name, shard);
      ws.tensors_.emplace(t.name, t.view);
    }
  }
  return ws;
}

const TensorView* WeightStore::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorView& WeightStore::get(std::string_view name) const {
  const TensorView* t = find(name);
  if (t == nullptr) {
    throw Error(ErrorCode::kNotFound, fmt::format("tensor '{}' not found in the checkpoint in {}", name,
                                                  dir_.string()));
  }
  return *t;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, view] : tensors_) out.push_back(name);
  return out;
}

size_t WeightStore::total_bytes() const {
  size_t total = 0;
  for (const SafetensorsFile& f : files_) total += f.data_size();
  return total;
}

void WeightStore::prefetch(const std::function<void(size_t, size_t)>& progress) const {
  constexpr size_t kChunk = size_t{64} << 20;  // advise and report per 64 MiB
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t total = total_bytes();
  size_t done = 0;
  if (progress) progress(0, total);
  volatile uint8_t sink = 0;
  for (const SafetensorsFile& f : files_) {
    const MappedFile& m = f.mapping();
    const size_t begin = f.data_offset();
    const size_t end = m.size();
    m.advise_willneed(begin, kChunk);
    for (size_t chunk = begin; chunk < end; chunk += kChunk) {
      const size_t chunk_end = std::min(end, chunk + kChunk);
      m.advise_willneed(chunk_end, kChunk);  // read ahead the next chunk while touching this one
      uint8_t acc = 0;
      // Touch the first byte of the chunk and of every page starting in it.
      acc ^= m.data()[chunk];
      for (size_t p = (chunk / page + 1) * page; p < chunk_end; p += page) acc ^= m.data()[p];
      sink = sink ^ acc;
      done += chunk_end - chunk;
      if (progress && done < total) progress(done, total);
    }
  }
  (void)sink;
  if (progress) progress(total, total);
}

}  // namespace fdpp

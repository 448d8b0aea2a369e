// SafetensorsFile: one memory-mapped .safetensors file.
//
// Layout: [u64 little-endian N][N bytes of JSON header][data section]. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end]} with offsets relative to the
// start of the data section; "__metadata__" (free-form strings) is ignored.
//
// open() validates everything it can before handing out views: the header length fits the file,
// the header is a JSON object, each dtype is supported (F32, F16, BF16), shapes are non-negative
// integers (rank <= 4), offsets are ordered and inside the data section, each tensor's byte size
// matches dtype x shape, and no two tensors overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace fdpp {

struct SafetensorsTensor {
  std::string name;
  TensorView view;        // contiguous CPU view into the mapping (or an aligned copy, see below)
  size_t data_begin = 0;  // data_offsets[0], relative to the data section
  size_t data_end = 0;    // data_offsets[1]
};

class SafetensorsFile {
 public:
  // Maps and validates `path`. Throws fdpp::Error (kNotFound, kIo, kParse, kOutOfRange,
  // kUnsupported) whose message names the file and, where it applies, the tensor.
  static SafetensorsFile open(const std::filesystem::path& path);

  SafetensorsFile() = default;
  SafetensorsFile(SafetensorsFile&&) noexcept = default;
  SafetensorsFile& operator=(SafetensorsFile&&) noexcept = default;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return file_.path(); }
  // Every tensor, ordered by data offset.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(std::string_view name) const;

  size_t header_size() const { return header_size_; }        // N
  size_t data_offset() const { return 8 + header_size_; }    // file offset of the data section
  size_t data_size() const { return file_.size() - data_offset(); }
  const MappedFile& mapping() const { return file_; }

 private:
  MappedFile file_;
  size_t header_size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> by_name_;  // name -> index in tensors_
  // A tensor whose bytes are not aligned to its element size in the mapping (possible when the
  // writer did not pad the header to 8 bytes) is copied here so views are always aligned.
  std::vector<std::unique_ptr<uint64_t[]>> aligned_copies_;
};

}  // namespace fdpp

// MappedFile: a read-only memory mapping of a whole file (RAII, move-only). An empty file is a
// valid mapping of size 0 with data() == nullptr. Errors name the path and the OS reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace fdpp {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only. Throws fdpp::Error: kNotFound when the file does not exist, kIo when
  // it cannot be opened, is not a regular file, or mmap fails.
  static MappedFile open(const std::filesystem::path& path);

  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Hints the kernel that bytes [offset, offset + length) will be read soon (madvise WILLNEED).
  // Best effort: failures are ignored. Ranges are clipped to the file.
  void advise_willneed(size_t offset, size_t length) const;

 private:
  void release() noexcept;

  const uint8_t* data_ = nullptr;  // start of the mapping (page aligned), nullptr when size_ == 0
  size_t size_ = 0;                // file size in bytes
  std::filesystem::path path_;
};

}  // namespace fdpp

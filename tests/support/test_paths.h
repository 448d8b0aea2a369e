// Where tests find data: ../shared (models, tokenizer vectors) and this tests/ folder.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace fdpp::test {

inline std::filesystem::path shared_dir() { return FDPP_SHARED_DIR; }
inline std::filesystem::path test_data_dir() { return FDPP_TEST_DATA_DIR; }
inline std::filesystem::path stories_model_dir() { return shared_dir() / "models" / "stories260K-hf"; }
inline std::filesystem::path fdpp_binary() { return FDPP_BINARY; }

// A fresh empty directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes text (or bytes) to a file, creating parent directories.
void write_file(const std::filesystem::path& path, const std::string& bytes);
std::string read_file(const std::filesystem::path& path);

// Result of running a command line through bash: exit status and captured streams.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult run_command(const std::string& command_line);

}  // namespace fdpp::test

// Skips the current test when the shared data it needs is absent.
#define FDPP_REQUIRE_PATH(p)                                                     \
  do {                                                                           \
    if (!std::filesystem::exists(p)) GTEST_SKIP() << "missing test data: " << (p); \
  } while (0)

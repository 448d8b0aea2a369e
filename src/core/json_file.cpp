#include "core/json_file.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "fdpp/status.h"

namespace fdpp {

std::string read_text_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw Error(ErrorCode::kNotFound, fmt::format("{}: file not found", path.string()));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorCode::kIo, fmt::format("{}: cannot open file for reading", path.string()));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw Error(ErrorCode::kIo, fmt::format("{}: read failed", path.string()));
  return ss.str();
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ErrorCode::kParse, fmt::format("{}: malformed JSON at byte {}: {}", path.string(), e.byte, e.what()));
  }
}

std::string show_json(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

}  // namespace fdpp

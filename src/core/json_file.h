// Reading text and JSON files with errors that name the file, and JSON values shortened for
// error messages: what every loader of config.json, index and calibration files needs.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace fdpp {

// Throws fdpp::Error: kNotFound when the file does not exist, kIo when it cannot be read.
std::string read_text_file(const std::filesystem::path& path);
// As read_text_file, then kParse "PATH: malformed JSON at byte N: ..." on a syntax error.
nlohmann::json read_json_file(const std::filesystem::path& path);
// v.dump(), cut to 80 characters.
std::string show_json(const nlohmann::json& v);

}  // namespace fdpp

// Reading tokenizer.json / tokenizer_config.json with errors that name the file and the field
// (e.g. "tokenizer.json: field 'model.type': expected \"BPE\", found \"WordPiece\"").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "fdpp/status.h"

namespace fdpp::tok {

using nlohmann::json;

// A parsed JSON file plus what error messages need to name it.
class JsonSource {
 public:
  // Reads and parses path; throws kNotFound (missing), kIo (unreadable) or kParse (bad JSON).
  static JsonSource read(const std::filesystem::path& path);
  // An already-parsed document (tests, generated configs); `name` stands for the file in messages.
  static JsonSource from_json(std::string name, json root) { return JsonSource(std::move(name), std::move(root)); }

  const json& root() const { return root_; }
  const std::string& name() const { return name_; }

  // Throws fdpp::Error(code) with "FILE: field 'FIELD': MESSAGE".
  [[noreturn]] void fail(ErrorCode code, std::string_view field, std::string_view message) const;

  // Member `key` of object `obj` (whose own path is `field`); throws when absent.
  const json& at(const json& obj, std::string_view field, std::string_view key) const;
  // Member `key` or nullptr when absent or null.
  static const json* find(const json& obj, std::string_view key);

  std::string string_at(const json& obj, std::string_view field, std::string_view key) const;
  std::string string_or(const json& obj, std::string_view field, std::string_view key,
                        std::string_view fallback) const;
  bool bool_or(const json& obj, std::string_view field, std::string_view key, bool fallback) const;
  int64_t int_at(const json& obj, std::string_view field, std::string_view key) const;
  int64_t int_or(const json& obj, std::string_view field, std::string_view key,
                 int64_t fallback) const;

  // "FIELD.KEY" / "FIELD[I]" for messages.
  static std::string join(std::string_view field, std::string_view key);
  static std::string index(std::string_view field, size_t i);

  // The JSON type of j in words ("string", "object", ...), for "expected X, found Y" messages.
  static std::string type_name(const json& j);

 private:
  JsonSource(std::string name, json root) : name_(std::move(name)), root_(std::move(root)) {}
  std::string name_;
  json root_;
};

}  // namespace fdpp::tok

#include "tokenizer/json_source.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace fdpp::tok {

JsonSource JsonSource::read(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw Error(ErrorCode::kNotFound, fmt::format("{}: file not found", name));
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: is a directory, not a JSON file", name));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, fmt::format("{}: cannot open for reading", name));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::kIo, fmt::format("{}: read failed", name));
  json root;
  try {
    root = json::parse(buf.str());
  } catch (const json::parse_error& e) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: malformed JSON at byte {}: {}", name, e.byte, e.what()));
  }
  if (!root.is_object()) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: expected a JSON object at top level, found {}", name, type_name(root)));
  }
  return JsonSource(name, std::move(root));
}

void JsonSource::fail(ErrorCode code, std::string_view field, std::string_view message) const {
  throw Error(code, fmt::format("{}: field '{}': {}", name_, field, message));
}

const json* JsonSource::find(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

const json& JsonSource::at(const json& obj, std::string_view field, std::string_view key) const {
  if (!obj.is_object()) fail(ErrorCode::kParse, field, fmt::format("expected an object, found {}", type_name(obj)));
  const json* v = find(obj, key);
  if (v == nullptr) fail(ErrorCode::kParse, join(field, key), "missing");
  return *v;
}

std::string JsonSource::string_at(const json& obj, std::string_view field, std::string_view key) const {
  const json& v = at(obj, field, key);
  if (!v.is_string()) fail(ErrorCode::kParse, join(field, key), fmt::format("expected a string, found {}", type_name(v)));
  return v.get<std::string>();
}

std::string JsonSource::string_or(const json& obj, std::string_view field, std::string_view key,
                                  std::string_view fallback) const {
  const json* v = find(obj, key);
  if (v == nullptr) return std::string(fallback);
  if (!v->is_string()) fail(ErrorCode::kParse, join(field, key), fmt::format("expected a string, found {}", type_name(*v)));
  return v->get<std::string>();
}

bool JsonSource::bool_or(const json& obj, std::string_view field, std::string_view key, bool fallback) const {
  const json* v = find(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) fail(ErrorCode::kParse, join(field, key), fmt::format("expected true or false, found {}", type_name(*v)));
  return v->get<bool>();
}

int64_t JsonSource::int_at(const json& obj, std::string_view field, std::string_view key) const {
  const json& v = at(obj, field, key);
  if (!v.is_number_integer()) fail(ErrorCode::kParse, join(field, key), fmt::format("expected an integer, found {}", type_name(v)));
  return v.get<int64_t>();
}

int64_t JsonSource::int_or(const json& obj, std::string_view field, std::string_view key, int64_t fallback) const {
  if (find(obj, key) == nullptr) return fallback;
  return int_at(obj, field, key);
}

std::string JsonSource::join(std::string_view field, std::string_view key) {
  if (field.empty()) return std::string(key);
  return fmt::format("{}.{}", field, key);
}

std::string JsonSource::index(std::string_view field, size_t i) { return fmt::format("{}[{}]", field, i); }

std::string JsonSource::type_name(const json& j) {
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return fmt::format("the string \"{}\"", j.get<std::string>());
    case json::value_t::boolean: return j.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return fmt::format("the number {}", j.dump());
    default: return "a non-JSON value";
  }
}

}  // namespace fdpp::tok

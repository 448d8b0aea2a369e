// Where the template comes from, and the variables it is rendered with (those Hugging Face's
// apply_chat_template passes: messages, tools/documents (None unless given), add_generation_prompt
// and the special tokens of tokenizer_config.json).
#include "tokenizer/chat_template.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

namespace fdpp {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, fmt::format("cannot read '{}'", path.string()));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::ordered_json read_json(const std::filesystem::path& path) {
  try {
    return nlohmann::ordered_json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kParse, fmt::format("'{}': {}", path.string(), e.what()));
  }
}

// A special token is a string or an AddedToken object {"content": "<s>", ...}.
std::string token_string(const nlohmann::ordered_json& config, const char* key) {
  if (!config.contains(key)) return {};
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return {};
}

// "chat_template": a string, or a list of {"name", "template"} of which "default" is used.
std::optional<std::string> template_from_value(const nlohmann::ordered_json& v, const std::filesystem::path& file) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    for (const auto& t : v)
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
        return t["template"].get<std::string>();
    throw Error(ErrorCode::kParse, fmt::format("'{}': chat_template is a list without a \"default\" entry",
                                               file.string()));
  }
  if (v.is_null()) return std::nullopt;
  throw Error(ErrorCode::kParse, fmt::format("'{}': chat_template must be a string or a list, found {}",
                                             file.string(), v.type_name()));
}

}  // namespace

const char* ChatTemplate::fallback_source() {
  // One turn per line as "Role: content", a blank line after a system message, then
  // "Assistant:" for the model to continue.
  return "{{ bos_token }}"
         "{% for message in messages %}"
         "{% if message.role == 'system' %}{{ message.content | trim }}{{ '\\n\\n' }}"
         "{% else %}{{ message.role | capitalize }}: {{ message.content | trim }}{{ '\\n' }}{% endif %}"
         "{% endfor %}"
         "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";
}

ChatTemplate::ChatTemplate(std::string source, bool fallback)
    : source_(std::move(source)), template_(source_), fallback_(fallback) {}

ChatTemplate ChatTemplate::from_source(const std::string& source, std::string bos_token,
                                       std::string eos_token) {
  ChatTemplate t(source, false);
  t.bos_token_ = std::move(bos_token);
  t.eos_token_ = std::move(eos_token);
  return t;
}

ChatTemplate ChatTemplate::for_model(const std::filesystem::path& model_dir) {
  const auto config_path = model_dir / "tokenizer_config.json";
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  if (std::filesystem::exists(config_path)) config = read_json(config_path);
  if (!config.is_object())
    throw Error(ErrorCode::kParse, fmt::format("'{}': expected a JSON object", config_path.string()));

  std::optional<std::string> source;
  std::filesystem::path origin = config_path;
  if (config.contains("chat_template")) source = template_from_value(config["chat_template"], config_path);
  if (!source && std::filesystem::exists(model_dir / "chat_template.jinja")) {
    origin = model_dir / "chat_template.jinja";
    source = read_text(origin);
  }
  if (!source && std::filesystem::exists(model_dir / "chat_template.json")) {
    origin = model_dir / "chat_template.json";
    const auto j = read_json(origin);
    if (j.is_object() && j.contains("chat_template")) source = template_from_value(j["chat_template"], origin);
  }

  auto make = [&](std::string src, bool fallback) {
    try {
      return ChatTemplate(std::move(src), fallback);
    } catch (const Error& e) {
      throw Error(e.code(), fmt::format("'{}': {}", origin.string(), e.what()));
    }
  };
  ChatTemplate t = source ? make(*source, false) : make(fallback_source(), true);
  t.bos_token_ = token_string(config, "bos_token");
  t.eos_token_ = token_string(config, "eos_token");
  t.unk_token_ = token_string(config, "unk_token");
  t.pad_token_ = token_string(config, "pad_token");
  return t;
}

std::string ChatTemplate::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                 const nlohmann::ordered_json& extra) const {
  jinja::Dict vars;
  vars.set("messages", jinja::Value::from_json(messages));
  vars.set("tools", jinja::Value::none());
  vars.set("documents", jinja::Value::none());
  vars.set("add_generation_prompt", jinja::Value(add_generation_prompt));
  vars.set("bos_token", jinja::Value(bos_token_));
  vars.set("eos_token", jinja::Value(eos_token_));
  vars.set("unk_token", jinja::Value(unk_token_));
  vars.set("pad_token", jinja::Value(pad_token_));
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) vars.set(k, jinja::Value::from_json(v));
  return template_.render(vars);
}

}  // namespace fdpp

// ChatTemplate: turns a list of chat messages into the prompt text a model was trained on, with
// the model's own Jinja template (tokenizer_config.json "chat_template", or chat_template.jinja /
// chat_template.json beside it) rendered as Hugging Face's apply_chat_template does. Models
// without one get a plain fallback ("User: ...\nAssistant:"); callers should say so once.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>

#include "tokenizer/jinja/template.h"

namespace fdpp {

class ChatTemplate {
 public:
  // The model's template, or the fallback when the model has none (is_fallback() then).
  // Throws fdpp::Error naming the file on a malformed config or a template that does not parse.
  static ChatTemplate for_model(const std::filesystem::path& model_dir);
  // A template given as text, with the special tokens it may print.
  static ChatTemplate from_source(const std::string& source, std::string bos_token = {},
                                  std::string eos_token = {});
  static const char* fallback_source();

  // messages: a JSON array of objects with at least "role" and "content" (a string). Extra
  // variables (tools, documents, ...) come from `extra`, an object. The text is meant to be
  // tokenized without adding special tokens again (the template writes BOS when it wants one).
  // Throws jinja::RaisedError when the template rejects the conversation, fdpp::Error otherwise.
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

  bool is_fallback() const { return fallback_; }
  const std::string& source() const { return source_; }
  const std::string& bos_token() const { return bos_token_; }
  const std::string& eos_token() const { return eos_token_; }

 private:
  ChatTemplate(std::string source, bool fallback);

  std::string source_;
  jinja::Template template_;
  bool fallback_ = false;
  std::string bos_token_, eos_token_, unk_token_, pad_token_;
};

}  // namespace fdpp

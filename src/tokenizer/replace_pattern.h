// The {"pattern": {"String"|"Regex": ...}, "content": ...} pair shared by the Replace normalizer
// and the Replace decoder.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/json_source.h"
#include "tokenizer/regex.h"

namespace fdpp::tok {

class ReplacePattern {
 public:
  static ReplacePattern from_json(const json& j, const JsonSource& src, const std::string& field);
  // Replaces every match in s (valid UTF-8) with the content.
  void apply(std::string& s) const;

 private:
  std::string literal_;            // used when regex_ is null
  std::shared_ptr<Regex> regex_;
  std::string content_;
};

// Reads a {"String": s} or {"Regex": r} pattern object: sets *literal or *regex.
void read_pattern(const json& j, const JsonSource& src, const std::string& field, std::string* literal,
                  std::shared_ptr<Regex>* regex);

}  // namespace fdpp::tok

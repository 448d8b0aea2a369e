// tokenizer.json "post_processor" for single sequences: TemplateProcessing (its "single"
// template), ByteLevel (no effect on ids), Bert/RobertaProcessing, Sequence, or none. The result
// is "ids before" + encoded ids + "ids after".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/json_source.h"

namespace fdpp::tok {

class PostProcessor {
 public:
  static PostProcessor from_json(const json& j, const JsonSource& src, const std::string& field);
  // A processor adding `before` ahead of the sequence and `after` behind it.
  static PostProcessor with_ids(std::vector<int32_t> before, std::vector<int32_t> after);

  void apply(std::vector<int32_t>& ids) const;
  const std::vector<int32_t>& prefix() const { return before_; }
  const std::vector<int32_t>& suffix() const { return after_; }

 private:
  std::vector<int32_t> before_;
  std::vector<int32_t> after_;
};

}  // namespace fdpp::tok

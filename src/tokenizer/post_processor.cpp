#include "tokenizer/post_processor.h"

#include <fmt/format.h>

namespace fdpp::tok {
namespace {

void append_template(const json& j, const JsonSource& src, const std::string& field, std::vector<int32_t>& before,
                     std::vector<int32_t>& after) {
  const json& single = src.at(j, field, "single");
  const std::string single_field = JsonSource::join(field, "single");
  if (!single.is_array()) src.fail(ErrorCode::kParse, single_field, "expected an array");
  const json* specials = JsonSource::find(j, "special_tokens");
  std::vector<int32_t> pre, post;
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string item_field = JsonSource::index(single_field, i);
    const json& item = single[i];
    if (JsonSource::find(item, "Sequence") != nullptr) {
      seen_sequence = true;
      continue;
    }
    const json* special = JsonSource::find(item, "SpecialToken");
    if (special == nullptr) src.fail(ErrorCode::kParse, item_field, "expected a \"Sequence\" or \"SpecialToken\" item");
    const std::string name = src.string_at(*special, JsonSource::join(item_field, "SpecialToken"), "id");
    const json* entry = specials ? JsonSource::find(*specials, name) : nullptr;
    if (entry == nullptr) {
      src.fail(ErrorCode::kParse, JsonSource::join(field, "special_tokens"),
               fmt::format("no entry for \"{}\", which {} uses", name, item_field));
    }
    const std::string entry_field = fmt::format("{}.special_tokens[\"{}\"]", field, name);
    const json& ids = src.at(*entry, entry_field, "ids");
    if (!ids.is_array()) src.fail(ErrorCode::kParse, JsonSource::join(entry_field, "ids"), "expected an array");
    for (const json& id : ids) {
      if (!id.is_number_integer()) src.fail(ErrorCode::kParse, JsonSource::join(entry_field, "ids"), "expected integers");
      (seen_sequence ? post : pre).push_back(id.get<int32_t>());
    }
  }
  // Processors of a Sequence wrap what came before them.
  before.insert(before.begin(), pre.begin(), pre.end());
  after.insert(after.end(), post.begin(), post.end());
}

int32_t pair_id(const json& j, const JsonSource& src, const std::string& field, const char* key) {
  const json& p = src.at(j, field, key);
  if (!p.is_array() || p.size() != 2 || !p[1].is_number_integer()) {
    src.fail(ErrorCode::kParse, JsonSource::join(field, key), "expected [\"token\", id]");
  }
  return p[1].get<int32_t>();
}

void append_processor(const json& j, const JsonSource& src, const std::string& field, std::vector<int32_t>& before,
                      std::vector<int32_t>& after) {
  if (j.is_null()) return;
  const std::string type = src.string_at(j, field, "type");
  if (type == "TemplateProcessing") {
    append_template(j, src, field, before, after);
  } else if (type == "ByteLevel") {
    // Only adjusts offsets.
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    before.insert(before.begin(), pair_id(j, src, field, "cls"));
    after.push_back(pair_id(j, src, field, "sep"));
  } else if (type == "Sequence") {
    const json& list = src.at(j, field, "processors");
    const std::string list_field = JsonSource::join(field, "processors");
    if (!list.is_array()) src.fail(ErrorCode::kParse, list_field, "expected an array");
    for (size_t i = 0; i < list.size(); ++i) append_processor(list[i], src, JsonSource::index(list_field, i), before, after);
  } else {
    src.fail(ErrorCode::kUnsupported, JsonSource::join(field, "type"),
             fmt::format("expected one of TemplateProcessing, ByteLevel, BertProcessing, RobertaProcessing, "
                         "Sequence; found \"{}\"",
                         type));
  }
}

}  // namespace

PostProcessor PostProcessor::from_json(const json& j, const JsonSource& src, const std::string& field) {
  PostProcessor p;
  append_processor(j, src, field, p.before_, p.after_);
  return p;
}

PostProcessor PostProcessor::with_ids(std::vector<int32_t> before, std::vector<int32_t> after) {
  PostProcessor p;
  p.before_ = std::move(before);
  p.after_ = std::move(after);
  return p;
}

void PostProcessor::apply(std::vector<int32_t>& ids) const {
  if (before_.empty() && after_.empty()) return;
  ids.insert(ids.begin(), before_.begin(), before_.end());
  ids.insert(ids.end(), after_.begin(), after_.end());
}

}  // namespace fdpp::tok

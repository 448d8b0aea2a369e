#include "tokenizer/replace_pattern.h"

#include <fmt/format.h>

#include <stdexcept>

#include "tokenizer/normalizers.h"

namespace fdpp::tok {

void read_pattern(const json& j, const JsonSource& src, const std::string& field, std::string* literal,
                  std::shared_ptr<Regex>* regex) {
  if (!j.is_object()) {
    src.fail(ErrorCode::kParse, field,
             fmt::format("expected {{\"String\": ...}} or {{\"Regex\": ...}}, found {}", JsonSource::type_name(j)));
  }
  if (const json* s = JsonSource::find(j, "String")) {
    if (!s->is_string()) src.fail(ErrorCode::kParse, JsonSource::join(field, "String"), "expected a string");
    *literal = s->get<std::string>();
    regex->reset();
    return;
  }
  if (const json* r = JsonSource::find(j, "Regex")) {
    if (!r->is_string()) src.fail(ErrorCode::kParse, JsonSource::join(field, "Regex"), "expected a string");
    try {
      *regex = std::make_shared<Regex>(r->get<std::string>());
    } catch (const std::invalid_argument& e) {
      src.fail(ErrorCode::kUnsupported, JsonSource::join(field, "Regex"),
               fmt::format("cannot compile the pattern: {}", e.what()));
    }
    return;
  }
  src.fail(ErrorCode::kParse, field, "expected a \"String\" or \"Regex\" member");
}

ReplacePattern ReplacePattern::from_json(const json& j, const JsonSource& src, const std::string& field) {
  ReplacePattern p;
  read_pattern(src.at(j, field, "pattern"), src, JsonSource::join(field, "pattern"), &p.literal_, &p.regex_);
  p.content_ = src.string_at(j, field, "content");
  return p;
}

void ReplacePattern::apply(std::string& s) const {
  if (!regex_) {
    replace_all(s, literal_, content_);
    return;
  }
  const auto matches = regex_->find_all(s);
  if (matches.empty()) return;
  std::string out;
  out.reserve(s.size());
  size_t last = 0;
  for (const auto& [start, end] : matches) {
    out.append(s, last, start - last);
    out.append(content_);
    last = end;
  }
  out.append(s, last, std::string::npos);
  s = std::move(out);
}

}  // namespace fdpp::tok

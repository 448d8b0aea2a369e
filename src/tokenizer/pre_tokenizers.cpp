#include "tokenizer/pre_tokenizers.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "tokenizer/normalizers.h"
#include "tokenizer/regex.h"
#include "tokenizer/replace_pattern.h"
#include "tokenizer/unicode.h"

namespace fdpp::tok {

std::string bytes_to_byte_level(std::string_view s) {
  const auto& map = byte_to_code_point();
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char b : s) append_utf8(out, map[b]);
  return out;
}

namespace {

// What happens to the matched parts ("delimiters") of a split; HF's SplitDelimiterBehavior.
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct Span {
  size_t start, end;
  bool is_match;
};

// Splits text into pieces from the spans covering it, applying the behavior (as HF does).
void split_spans(const Piece& piece, std::vector<Span> spans, Behavior behavior, std::vector<Piece>& out) {
  std::vector<Span> merged;
  switch (behavior) {
    case Behavior::kRemoved:
      for (const Span& s : spans)
        if (!s.is_match) merged.push_back(s);
      break;
    case Behavior::kIsolated:
      merged = std::move(spans);
      break;
    case Behavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !merged.empty()) merged.back().end = s.end;
        else merged.push_back(s);
        previous_match = s.is_match;
      }
      break;
    }
    case Behavior::kMergedWithNext: {
      bool next_match = false;
      for (size_t i = spans.size(); i-- > 0;) {
        const Span& s = spans[i];
        if (s.is_match && !next_match && !merged.empty()) merged.back().start = s.start;
        else merged.push_back(s);
        next_match = s.is_match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    }
    case Behavior::kContiguous: {
      bool previous_match = false;
      for (const Span& s : spans) {
        if (s.is_match == previous_match && !merged.empty()) merged.back().end = s.end;
        else merged.push_back(s);
        previous_match = s.is_match;
      }
      break;
    }
  }
  for (const Span& s : merged) {
    if (s.end <= s.start) continue;
    out.push_back({piece.text.substr(s.start, s.end - s.start), piece.at_start && s.start == 0});
  }
}

// Spans covering text: the matches and the gaps between them.
std::vector<Span> spans_from_matches(size_t size, const std::vector<std::pair<size_t, size_t>>& matches,
                                     bool invert) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    if (prev != start) spans.push_back({prev, start, invert});
    spans.push_back({start, end, !invert});
    prev = end;
  }
  if (prev != size) spans.push_back({prev, size, invert});
  return spans;
}

std::vector<std::pair<size_t, size_t>> literal_matches(std::string_view text, std::string_view needle) {
  std::vector<std::pair<size_t, size_t>> m;
  if (needle.empty()) return m;
  for (size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + needle.size()))
    m.emplace_back(pos, pos + needle.size());
  return m;
}

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::string literal, std::shared_ptr<Regex> regex, Behavior behavior, bool invert)
      : literal_(std::move(literal)), regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    for (const Piece& p : pieces) {
      if (p.text.empty()) continue;
      const auto matches = regex_ ? regex_->find_all(p.text) : literal_matches(p.text, literal_);
      split_spans(p, spans_from_matches(p.text.size(), matches, invert_), behavior_, out);
    }
    pieces = std::move(out);
  }

 private:
  std::string literal_;
  std::shared_ptr<Regex> regex_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's pre-tokenization pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * (regex_ ? 4 : 1));
    for (Piece& p : pieces) {
      if (p.text.empty()) continue;
      if (add_prefix_space_ && p.text[0] != ' ') p.text = " " + p.text;
      if (regex_) {
        for (const auto& [start, end] : regex_->find_all(p.text)) {
          if (end > start) out.push_back({bytes_to_byte_level(std::string_view(p.text).substr(start, end - start)),
                                          p.at_start && start == 0});
        }
      } else {
        out.push_back({bytes_to_byte_level(p.text), p.at_start});
      }
    }
    pieces = std::move(out);
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (Piece& p : pieces) {
      if (p.text.empty()) continue;
      std::string s = p.text;
      replace_all(s, " ", replacement_);
      const bool starts = s.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start)))
        s.insert(0, replacement_);
      Piece q{std::move(s), p.at_start};
      if (split_) {
        split_spans(q, spans_from_matches(q.text.size(), literal_matches(q.text, replacement_), false),
                    Behavior::kMergedWithNext, out);
      } else {
        out.push_back(std::move(q));
      }
    }
    pieces = std::move(out);
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class DigitsPreTokenizer final : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : regex_(individual ? R"(\p{N})" : R"(\p{N}+)") {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    for (const Piece& p : pieces) {
      if (p.text.empty()) continue;
      split_spans(p, spans_from_matches(p.text.size(), regex_.find_all(p.text), false), Behavior::kIsolated, out);
    }
    pieces = std::move(out);
  }

 private:
  Regex regex_;
};

Behavior parse_behavior(const std::string& name, const JsonSource& src, const std::string& field) {
  if (name == "Removed") return Behavior::kRemoved;
  if (name == "Isolated") return Behavior::kIsolated;
  if (name == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::kMergedWithNext;
  if (name == "Contiguous") return Behavior::kContiguous;
  src.fail(ErrorCode::kParse, field,
           fmt::format("expected one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous; "
                       "found \"{}\"",
                       name));
}

PrependScheme parse_prepend_scheme(const json& j, const JsonSource& src, const std::string& field) {
  if (const json* s = JsonSource::find(j, "prepend_scheme")) {
    const std::string f = JsonSource::join(field, "prepend_scheme");
    if (!s->is_string()) src.fail(ErrorCode::kParse, f, "expected a string");
    const std::string v = s->get<std::string>();
    if (v == "always") return PrependScheme::kAlways;
    if (v == "first") return PrependScheme::kFirst;
    if (v == "never") return PrependScheme::kNever;
    src.fail(ErrorCode::kParse, f, fmt::format("expected \"always\", \"first\" or \"never\", found \"{}\"", v));
  }
  // Older files: add_prefix_space (default true).
  return src.bool_or(j, field, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const JsonSource& src,
                                                 const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = src.string_at(j, field, "type");
  if (type == "Sequence") {
    const json& list = src.at(j, field, "pretokenizers");
    const std::string list_field = JsonSource::join(field, "pretokenizers");
    if (!list.is_array()) src.fail(ErrorCode::kParse, list_field, "expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      if (auto p = make_pre_tokenizer(list[i], src, JsonSource::index(list_field, i))) parts.push_back(std::move(p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    std::string literal;
    std::shared_ptr<Regex> regex;
    read_pattern(src.at(j, field, "pattern"), src, JsonSource::join(field, "pattern"), &literal, &regex);
    const Behavior behavior =
        parse_behavior(src.string_at(j, field, "behavior"), src, JsonSource::join(field, "behavior"));
    return std::make_unique<SplitPreTokenizer>(std::move(literal), std::move(regex), behavior,
                                               src.bool_or(j, field, "invert", false));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(src.bool_or(j, field, "add_prefix_space", true),
                                                   src.bool_or(j, field, "use_regex", true));
  }
  if (type == "Metaspace") {
    std::string replacement = src.string_or(j, field, "replacement", "\xE2\x96\x81");
    if (replacement.empty()) src.fail(ErrorCode::kParse, JsonSource::join(field, "replacement"), "is empty");
    return std::make_unique<MetaspacePreTokenizer>(std::move(replacement), parse_prepend_scheme(j, src, field),
                                                   src.bool_or(j, field, "split", true));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(src.bool_or(j, field, "individual_digits", false));
  src.fail(ErrorCode::kUnsupported, JsonSource::join(field, "type"),
           fmt::format("expected one of Sequence, Split, ByteLevel, Metaspace, Digits; found \"{}\"", type));
}

}  // namespace fdpp::tok

#include "tokenizer/decoders.h"

#include <fmt/format.h>

#include <optional>

#include "tokenizer/normalizers.h"
#include "tokenizer/replace_pattern.h"
#include "tokenizer/unicode.h"

namespace fdpp::tok {
namespace {

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : parts_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

class ReplaceDecoder final : public Decoder {
 public:
  explicit ReplaceDecoder(ReplacePattern p) : pattern_(std::move(p)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) pattern_.apply(t);
  }

 private:
  ReplacePattern pattern_;
};

// The byte value of a "<0xAB>" token.
std::optional<unsigned char> byte_token_value(const std::string& t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return std::nullopt;
  return static_cast<unsigned char>(hi * 16 + lo);
}

// Runs of <0xAB> tokens become the text they encode; a run that is not valid UTF-8 becomes one
// U+FFFD per byte (HF's behaviour).
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    size_t byte_count = 0;
    auto flush = [&] {
      if (byte_count == 0) return;
      if (!find_invalid_utf8(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t k = 0; k < byte_count; ++k) out.emplace_back(kReplacementChar);
      }
      bytes.clear();
      byte_count = 0;
    };
    for (auto& t : tokens) {
      if (auto b = byte_token_value(t)) {
        bytes.push_back(static_cast<char>(*b));
        ++byte_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of a character from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (auto& t : tokens) {
      size_t begin = 0;
      for (size_t k = 0; k < start_ && t.compare(begin, content_.size(), content_) == 0; ++k)
        begin += content_.size();
      size_t end = t.size();
      for (size_t k = 0; k < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++k)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

// GPT-2 characters back to bytes; all tokens become one string (invalid UTF-8 -> U+FFFD).
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      for (size_t i = 0; i < t.size();) {
        const int b = code_point_to_byte(next_code_point(t, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!mapped) {  // not a byte-level token (e.g. an added token): keep its text
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

// The replacement character becomes a space, except in the first token, where HF drops it (all
// of its occurrences there) unless prepend_scheme is "never".
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      replace_all(t, replacement_, i == 0 && strip_first_ ? "" : " ");
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const json& j, const JsonSource& src, const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = src.string_at(j, field, "type");
  if (type == "Sequence") {
    const json& list = src.at(j, field, "decoders");
    const std::string list_field = JsonSource::join(field, "decoders");
    if (!list.is_array()) src.fail(ErrorCode::kParse, list_field, "expected an array");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      if (auto d = make_decoder(list[i], src, JsonSource::index(list_field, i))) parts.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(ReplacePattern::from_json(j, src, field));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const int64_t start = src.int_or(j, field, "start", 0), stop = src.int_or(j, field, "stop", 0);
    if (start < 0 || stop < 0) src.fail(ErrorCode::kParse, field, "start and stop must be non-negative");
    std::string content = src.string_at(j, field, "content");
    if (content.empty()) src.fail(ErrorCode::kParse, JsonSource::join(field, "content"), "is empty");
    return std::make_unique<StripDecoder>(std::move(content), static_cast<size_t>(start), static_cast<size_t>(stop));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    std::string replacement = src.string_or(j, field, "replacement", "\xE2\x96\x81");
    if (replacement.empty()) src.fail(ErrorCode::kParse, JsonSource::join(field, "replacement"), "is empty");
    bool strip_first;
    if (JsonSource::find(j, "prepend_scheme") != nullptr) {
      strip_first = src.string_at(j, field, "prepend_scheme") != "never";
    } else {
      strip_first = src.bool_or(j, field, "add_prefix_space", true);
    }
    return std::make_unique<MetaspaceDecoder>(std::move(replacement), strip_first);
  }
  src.fail(ErrorCode::kUnsupported, JsonSource::join(field, "type"),
           fmt::format("expected one of Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace; "
                       "found \"{}\"",
                       type));
}

}  // namespace fdpp::tok

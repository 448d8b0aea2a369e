#include "tokenizer/normalizers.h"

#include <fmt/format.h>

#include <cstdlib>
#include <optional>
#include <vector>

#include "tokenizer/regex.h"
#include "tokenizer/replace_pattern.h"

#if FDPP_HAVE_UTF8PROC
#include <utf8proc.h>
#endif

namespace fdpp::tok {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  size_t pos = s.find(from);
  if (pos == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t last = 0;
  while (pos != std::string::npos) {
    out.append(s, last, pos - last);
    out.append(to);
    last = pos + from.size();
    pos = s.find(from, last);
  }
  out.append(s, last, std::string::npos);
  s = std::move(out);
}

namespace {

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

// Prepends a string to non-empty input (an empty string stays empty, as in HF).
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  explicit ReplaceNormalizer(ReplacePattern p) : pattern_(std::move(p)) {}
  void normalize(std::string& s) const override { pattern_.apply(s); }

 private:
  ReplacePattern pattern_;
};

#if FDPP_HAVE_UTF8PROC
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string& s) const override {
    if (s.empty()) return;
    bool ascii = true;
    for (unsigned char c : s) ascii = ascii && c < 0x80;
    if (ascii) return;  // every normalization form leaves ASCII unchanged
    utf8proc_uint8_t* out = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                     static_cast<utf8proc_ssize_t>(s.size()), &out,
                     static_cast<utf8proc_option_t>(options_));
    if (n < 0) {
      throw Error(ErrorCode::kInternal,
                  fmt::format("Unicode normalization failed: {}", utf8proc_errmsg(n)));
    }
    s.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
    std::free(out);
  }

 private:
  int options_;
};
#endif

std::unique_ptr<Normalizer> make_unicode_normalizer(const std::string& type, const JsonSource& src,
                                                    const std::string& field) {
#if FDPP_HAVE_UTF8PROC
  int options = UTF8PROC_STABLE;
  if (type == "NFC") options |= UTF8PROC_COMPOSE;
  else if (type == "NFD") options |= UTF8PROC_DECOMPOSE;
  else if (type == "NFKC") options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  else options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  return std::make_unique<UnicodeNormalizer>(options);
#else
  src.fail(ErrorCode::kUnsupported, JsonSource::join(field, "type"),
           fmt::format("normalizer \"{}\" needs Unicode normalization, but fdpp was built without "
                       "utf8proc (install libutf8proc-dev and rebuild)",
                       type));
#endif
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j, const JsonSource& src,
                                            const std::string& field) {
  if (j.is_null()) return nullptr;
  const std::string type = src.string_at(j, field, "type");
  if (type == "Sequence") {
    const json& list = src.at(j, field, "normalizers");
    const std::string list_field = JsonSource::join(field, "normalizers");
    if (!list.is_array()) src.fail(ErrorCode::kParse, list_field, "expected an array");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      if (auto n = make_normalizer(list[i], src, JsonSource::index(list_field, i))) parts.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(src.string_at(j, field, "prepend"));
  if (type == "Replace") return std::make_unique<ReplaceNormalizer>(ReplacePattern::from_json(j, src, field));
  if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    return make_unicode_normalizer(type, src, field);
  }
  src.fail(ErrorCode::kUnsupported, JsonSource::join(field, "type"),
           fmt::format("expected one of Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD; found \"{}\"", type));
}

}  // namespace fdpp::tok

#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <fmt/format.h>
#include <pcre2.h>

#include <stdexcept>

#include "tokenizer/unicode.h"

namespace fdpp::tok {
namespace {

// Oniguruma's \s is Unicode White_Space; PCRE2's (with UCP) is close but not identical.
std::string translate_oniguruma(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size()) {
      const char c = p[i + 1];
      if (c == 's') out += "\\p{White_Space}";
      else if (c == 'S') out += "\\P{White_Space}";
      else {
        out += p[i];
        out += c;
      }
      ++i;
    } else {
      out += p[i];
    }
  }
  return out;
}

pcre2_code* compile(const std::string& pattern, std::string* error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP, &code, &offset, nullptr);
  if (re == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(code, buf, sizeof(buf));
    *error = fmt::format("{} at pattern offset {}", reinterpret_cast<const char*>(buf), offset);
  }
  return re;
}

}  // namespace

struct Regex::Code {
  pcre2_code* re = nullptr;
  ~Code() {
    if (re != nullptr) pcre2_code_free(re);
  }
};

Regex::Regex(std::string_view pattern) : pattern_(pattern), code_(std::make_unique<Code>()) {
  std::string error;
  code_->re = compile(translate_oniguruma(pattern), &error);
  if (code_->re == nullptr) {
    std::string ignored;
    code_->re = compile(pattern_, &ignored);  // a PCRE2 without \p{White_Space}: use \s as is
  }
  if (code_->re == nullptr) throw std::invalid_argument(error);
  pcre2_jit_compile(code_->re, PCRE2_JIT_COMPLETE);  // best effort: falls back to the interpreter
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

namespace {
struct MatchData {
  pcre2_match_data* md;
  explicit MatchData(const pcre2_code* re) : md(pcre2_match_data_create_from_pattern(re, nullptr)) {
    if (md == nullptr) throw std::bad_alloc();
  }
  ~MatchData() { pcre2_match_data_free(md); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};

[[noreturn]] void throw_match_error(int rc) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(rc, buf, sizeof(buf));
  throw std::runtime_error(fmt::format("regex match failed: {}", reinterpret_cast<const char*>(buf)));
}
}  // namespace

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view subject) const {
  std::vector<std::pair<size_t, size_t>> matches;
  MatchData data(code_->re);
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  size_t pos = 0;
  while (pos <= subject.size()) {
    const int rc = pcre2_match(code_->re, s, subject.size(), pos, PCRE2_NO_UTF_CHECK, data.md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw_match_error(rc);
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data.md);
    const size_t start = ov[0], end = ov[1];
    matches.emplace_back(start, end);
    if (end > start) {
      pos = end;
    } else {
      if (end >= subject.size()) break;
      pos = end + utf8_length_from_lead(static_cast<unsigned char>(subject[end]));
    }
  }
  return matches;
}

bool Regex::search(std::string_view subject) const {
  MatchData data(code_->re);
  const int rc = pcre2_match(code_->re, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                             0, PCRE2_NO_UTF_CHECK, data.md, nullptr);
  if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) throw_match_error(rc);
  return rc >= 0;
}

std::string regex_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

}  // namespace fdpp::tok

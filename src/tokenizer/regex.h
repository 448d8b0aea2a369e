// A compiled PCRE2 pattern (UTF + UCP) for the Split pre-tokenizer and Replace normalizer/decoder.
// Patterns in tokenizer.json are written for Oniguruma; \s and \S are rewritten to the Unicode
// White_Space property, which is what Oniguruma means by them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fdpp::tok {

class Regex {
 public:
  // Throws std::invalid_argument with PCRE2's message and offset on a bad pattern.
  explicit Regex(std::string_view pattern);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // The [start, end) byte ranges of the non-overlapping matches, left to right. The subject must
  // be valid UTF-8. Empty matches are reported and the search resumes one character later.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view subject) const;

  // Whether the pattern matches somewhere in subject.
  bool search(std::string_view subject) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

// Escapes s so that it matches literally.
std::string regex_escape(std::string_view s);

}  // namespace fdpp::tok

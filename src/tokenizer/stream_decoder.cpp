// StreamDecoder: incremental detokenization with a sliding window (vLLM's prefix/read offsets).
// Each push decodes the window twice, with and without the unread ids, and emits the difference
// once it no longer ends in an incomplete character (U+FFFD).
#include <algorithm>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace fdpp {
namespace {

constexpr size_t kPromptContext = 5;   // prompt ids kept as left context (vLLM uses 5 as well)
constexpr size_t kCompactAfter = 256;  // drop emitted ids once this many precede the window

// Length of the common prefix of a and b, backed off to a character boundary of b.
size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < b.size() && (static_cast<unsigned char>(b[n]) & 0xC0) == 0x80) --n;
  return n;
}

bool ends_with_replacement(const std::string& s) {
  return s.size() >= tok::kReplacementChar.size() &&
         s.compare(s.size() - tok::kReplacementChar.size(), tok::kReplacementChar.size(), tok::kReplacementChar) == 0;
}

}  // namespace

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids) : tokenizer_(tokenizer) {
  const size_t keep = std::min(prompt_ids.size(), kPromptContext);
  ids_.assign(prompt_ids.end() - static_cast<std::ptrdiff_t>(keep), prompt_ids.end());
  prefix_offset_ = 0;
  read_offset_ = ids_.size();
}

std::string StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  const auto all = std::span<const int32_t>(ids_);
  const std::string prefix_text = tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_));
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_));
  if (new_text.size() <= prefix_text.size() || ends_with_replacement(new_text)) return {};
  // The window's text can only grow at its end, except when a decoder rewrites its start
  // differently (it does not for the supported decoders); take what follows the common prefix.
  std::string piece = new_text.substr(common_prefix(prefix_text, new_text));
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (prefix_offset_ >= kCompactAfter) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  text_ += piece;
  return piece;
}

std::string StreamDecoder::flush() {
  if (read_offset_ >= ids_.size()) return {};
  const auto all = std::span<const int32_t>(ids_);
  const std::string prefix_text = tokenizer_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_));
  const std::string new_text = tokenizer_.decode(all.subspan(prefix_offset_));
  std::string piece = new_text.substr(common_prefix(prefix_text, new_text));
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  text_ += piece;
  return piece;
}

}  // namespace fdpp

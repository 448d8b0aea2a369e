#include "tokenizer/added_vocab.h"

#include <algorithm>

#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace fdpp::tok {
namespace {

bool is_word_char(std::string_view ch) {
  if (ch.size() == 1) {
    const auto c = static_cast<unsigned char>(ch[0]);
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static const Regex word("^\\w$");
  return word.search(ch);
}

// Whether text ends (or starts) with a word character.
bool ends_with_word(std::string_view text) {
  if (text.empty()) return false;
  size_t i = text.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
  return is_word_char(text.substr(i));
}
bool starts_with_word(std::string_view text) {
  if (text.empty()) return false;
  return is_word_char(text.substr(0, std::min(text.size(), utf8_length_from_lead(static_cast<unsigned char>(text[0])))));
}

// Start of the run of whitespace that ends text (text.size() when there is none).
size_t trailing_space_start(std::string_view text) {
  size_t start = text.size();
  while (start > 0) {
    size_t i = start - 1;
    while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80) --i;
    size_t j = i;
    if (!is_unicode_whitespace(next_code_point(text, j))) break;
    start = i;
  }
  return start;
}

// Length of the run of whitespace that starts text.
size_t leading_space_length(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    if (!is_unicode_whitespace(next_code_point(text, j))) break;
    i = j;
  }
  return i;
}

}  // namespace

int32_t AddedTokenMatcher::child(int32_t node, unsigned char c) const {
  for (const auto& [byte, next] : nodes_[node].children)
    if (byte == c) return next;
  return -1;
}

void AddedTokenMatcher::add(std::string_view pattern, int32_t token) {
  if (pattern.empty()) return;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
  int32_t node = 0;
  for (unsigned char c : pattern) {
    int32_t next = child(node, c);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(c, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  if (nodes_[node].token < 0) nodes_[node].token = token;  // the first token with this text wins
}

std::vector<Segment> AddedTokenMatcher::split(std::string_view text, const std::vector<AddedToken>& tokens) const {
  std::vector<Segment> out;
  size_t emitted = 0;  // text before this is covered by out
  size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    int32_t node = 0, best = -1;
    size_t best_end = pos;
    for (size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = i + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    const AddedToken& tok = tokens[best];
    size_t start = pos, stop = best_end;
    if (tok.single_word && (ends_with_word(text.substr(0, start)) || starts_with_word(text.substr(stop)))) {
      pos = stop;  // as HF: the rejected match is skipped over, not re-scanned
      continue;
    }
    if (tok.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), emitted);
    if (tok.rstrip) stop += leading_space_length(text.substr(stop));
    if (emitted < start) out.push_back({emitted, start, -1});
    out.push_back({start, stop, best});
    emitted = stop;
    pos = stop;
  }
  if (emitted < text.size()) out.push_back({emitted, text.size(), -1});
  return out;
}

}  // namespace fdpp::tok

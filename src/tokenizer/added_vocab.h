// Added tokens (tokenizer.json "added_tokens"): found in the input before the model sees it, the
// way HF's AddedVocabulary does. Tokens with normalized=false are matched in the raw input, the
// others in each normalized piece (against their normalized content). Leftmost-longest matching;
// lstrip/rstrip absorb neighbouring whitespace; single_word matches only between non-word chars.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fdpp::tok {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A part of the input: plain text (token < 0) or a match of added token `token` (an index into
// the token list), as the byte range [start, end).
struct Segment {
  size_t start = 0;
  size_t end = 0;
  int32_t token = -1;
};

class AddedTokenMatcher {
 public:
  // pattern: the text to find; token: index into `tokens` passed to split().
  void add(std::string_view pattern, int32_t token);
  bool empty() const { return nodes_.size() <= 1; }

  // Covers text (valid UTF-8) with segments, left to right; empty text segments are omitted.
  std::vector<Segment> split(std::string_view text, const std::vector<AddedToken>& tokens) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token = -1;
  };
  int32_t child(int32_t node, unsigned char c) const;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

}  // namespace fdpp::tok

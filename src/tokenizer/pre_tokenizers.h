// tokenizer.json "pre_tokenizer": null, Sequence, Split (String/Regex pattern, every behavior,
// invert), ByteLevel (add_prefix_space, use_regex), Metaspace (replacement, prepend_scheme, split),
// Digits. Pieces are plain strings: fdpp needs no offsets.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_source.h"

namespace fdpp::tok {

struct Piece {
  std::string text;
  bool at_start = false;  // begins at byte 0 of the encoded input (Metaspace prepend_scheme "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits/rewrites every piece; empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const JsonSource& src,
                                                 const std::string& field);

// Maps each byte of s to its GPT-2 printable character (what the ByteLevel pre-tokenizer does).
std::string bytes_to_byte_level(std::string_view s);

}  // namespace fdpp::tok

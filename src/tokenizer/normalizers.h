// tokenizer.json "normalizer": Sequence, Prepend, Replace, NFC/NFD/NFKC/NFKD (through utf8proc,
// when fdpp was built with it). Other types are rejected with kUnsupported naming the field.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "tokenizer/json_source.h"

namespace fdpp::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites s in place (s is valid UTF-8 and stays so).
  virtual void normalize(std::string& s) const = 0;
};

// nullptr for a null/absent normalizer. `field` is the JSON path of j, for messages.
std::unique_ptr<Normalizer> make_normalizer(const json& j, const JsonSource& src,
                                            const std::string& field);

// Replaces every occurrence of `from` in s by `to`.
void replace_all(std::string& s, std::string_view from, std::string_view to);

}  // namespace fdpp::tok

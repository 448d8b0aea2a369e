// tokenizer.json "decoder": Sequence, Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace.
// Like HF's decode_chain, each decoder rewrites the list of token strings; the results are joined.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_source.h"

namespace fdpp::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for a null/absent decoder (tokens are then joined with spaces, as HF does).
std::unique_ptr<Decoder> make_decoder(const json& j, const JsonSource& src, const std::string& field);

}  // namespace fdpp::tok

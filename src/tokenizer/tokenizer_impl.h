// Tokenizer::Impl: the loaded pipeline (added tokens -> normalizer -> pre-tokenizer -> BPE ->
// post-processor; decoder for the way back). Private to src/tokenizer.
#pragma once

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace fdpp {

struct Tokenizer::Impl {
  tok::BpeModel model;
  std::vector<tok::AddedToken> added;                 // in tokenizer.json order
  std::unordered_map<int32_t, size_t> added_by_id;    // id -> index into added
  tok::Vocab added_by_content;                        // content -> id
  tok::AddedTokenMatcher raw_matcher;                 // added tokens with normalized=false
  tok::AddedTokenMatcher normalized_matcher;          // the others, by normalized content
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Decoder> decoder;
  tok::PostProcessor post_processor;
  std::optional<int32_t> bos;
  std::optional<int32_t> eos;
  bool clean_up_tokenization_spaces = false;
  size_t vocab_size = 0;

  std::optional<int32_t> token_id(std::string_view token) const;
  // Appends the ids of a piece of input that contains no raw-matched added token.
  void encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& ids) const;
};

}  // namespace fdpp

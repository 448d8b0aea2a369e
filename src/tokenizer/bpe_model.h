// tokenizer.json "model" of type BPE: vocabulary, merges ranked by their order, byte_fallback
// (<0xAB> tokens), unk/fuse_unk, ignore_merges, continuing_subword_prefix, end_of_word_suffix.
// A word is split into characters, then the lowest-ranked adjacent pair is merged repeatedly
// (leftmost first on ties) with a priority queue over a linked list: O(n log n) per word.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/json_source.h"

namespace fdpp::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using Vocab = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // j is tokenizer.json's "model" object. Throws kUnsupported unless model.type is "BPE".
  static BpeModel from_json(const json& j, const JsonSource& src);

  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token of id, or nullptr when the model has no such id.
  const std::string* id_to_token(int32_t id) const;
  // Largest id + 1.
  size_t size() const { return tokens_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(int32_t a, int32_t b) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_all(std::vector<int32_t>& ids) const;

  Vocab vocab_;
  std::vector<std::string> tokens_;     // by id; empty where the vocabulary has a hole
  std::vector<bool> has_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  std::array<int32_t, 256> byte_ids_{};  // id of <0xAB> for each byte, -1 when absent
  bool all_bytes_present_ = false;
};

}  // namespace fdpp::tok

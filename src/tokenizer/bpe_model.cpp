#include "tokenizer/bpe_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <queue>

#include "tokenizer/unicode.h"

namespace fdpp::tok {
namespace {

// Splits a string-form merge "a b" into its two tokens. Tokens may themselves contain spaces
// (some SentencePiece conversions have " " and "  " tokens); then the split whose two halves and
// their concatenation are all in the vocabulary is used. Returns false when there is none.
bool split_merge_line(std::string_view line, const Vocab& vocab, std::string_view& a, std::string_view& b) {
  const size_t first = line.find(' ');
  if (first == std::string_view::npos) return false;
  if (line.find(' ', first + 1) == std::string_view::npos) {
    a = line.substr(0, first);
    b = line.substr(first + 1);
    return true;
  }
  for (size_t sp = first; sp != std::string_view::npos; sp = line.find(' ', sp + 1)) {
    const std::string_view x = line.substr(0, sp), y = line.substr(sp + 1);
    if (!x.empty() && !y.empty() && vocab.contains(x) && vocab.contains(y) &&
        vocab.contains(std::string(x) + std::string(y))) {
      a = x;
      b = y;
      return true;
    }
  }
  return false;
}

}  // namespace

BpeModel BpeModel::from_json(const json& j, const JsonSource& src) {
  const std::string field = "model";
  if (!j.is_object()) src.fail(ErrorCode::kParse, field, fmt::format("expected an object, found {}", JsonSource::type_name(j)));
  // Older files omit "type" for BPE; they are recognised by their "merges".
  std::string type = src.string_or(j, field, "type", JsonSource::find(j, "merges") ? "BPE" : "");
  if (type != "BPE") {
    src.fail(ErrorCode::kUnsupported, "model.type",
             fmt::format("expected \"BPE\", found \"{}\" (fdpp implements only BPE tokenizers)", type));
  }
  BpeModel m;
  const json& vocab = src.at(j, field, "vocab");
  if (!vocab.is_object()) src.fail(ErrorCode::kParse, "model.vocab", fmt::format("expected an object, found {}", JsonSource::type_name(vocab)));
  m.vocab_.reserve(vocab.size());
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > INT32_MAX) {
      src.fail(ErrorCode::kParse, fmt::format("model.vocab[\"{}\"]", it.key()),
               fmt::format("expected a non-negative integer id, found {}", JsonSource::type_name(*it)));
    }
    const int64_t id = it->get<int64_t>();
    m.vocab_.emplace(it.key(), static_cast<int32_t>(id));
    max_id = std::max(max_id, id);
  }
  m.tokens_.assign(static_cast<size_t>(max_id + 1), std::string());
  m.has_token_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : m.vocab_) {
    m.tokens_[id] = token;
    m.has_token_[id] = true;
  }

  m.byte_fallback_ = src.bool_or(j, field, "byte_fallback", false);
  m.fuse_unk_ = src.bool_or(j, field, "fuse_unk", false);
  m.ignore_merges_ = src.bool_or(j, field, "ignore_merges", false);
  m.continuing_subword_prefix_ = src.string_or(j, field, "continuing_subword_prefix", "");
  m.end_of_word_suffix_ = src.string_or(j, field, "end_of_word_suffix", "");
  if (const json* unk = JsonSource::find(j, "unk_token")) {
    if (!unk->is_string()) src.fail(ErrorCode::kParse, "model.unk_token", "expected a string");
    auto id = m.token_to_id(unk->get<std::string>());
    if (!id) {
      src.fail(ErrorCode::kParse, "model.unk_token",
               fmt::format("\"{}\" is not in model.vocab", unk->get<std::string>()));
    }
    m.unk_id_ = id;
  }
  m.all_bytes_present_ = true;
  for (int b = 0; b < 256; ++b) {
    auto id = m.token_to_id(fmt::format("<0x{:02X}>", b));
    m.byte_ids_[b] = id ? *id : -1;
    m.all_bytes_present_ = m.all_bytes_present_ && id.has_value();
  }

  const json& merges = src.at(j, field, "merges");
  if (!merges.is_array()) src.fail(ErrorCode::kParse, "model.merges", "expected an array");
  m.merges_.reserve(merges.size() * 2);
  const size_t prefix_len = m.continuing_subword_prefix_.size();
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& item = merges[i];
    std::string_view a, b;
    if (item.is_string()) {
      const std::string& line = item.get_ref<const std::string&>();
      if (!split_merge_line(line, m.vocab_, a, b)) {
        if (std::count(line.begin(), line.end(), ' ') > 1) continue;  // ambiguous and unusable: HF never applies it
        src.fail(ErrorCode::kParse, fmt::format("model.merges[{}]", i),
                 fmt::format("expected \"A B\" (two tokens separated by a space), found {}", item.dump()));
      }
    } else if (item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_string()) {
      a = item[0].get_ref<const std::string&>();
      b = item[1].get_ref<const std::string&>();
    } else {
      src.fail(ErrorCode::kParse, fmt::format("model.merges[{}]", i),
               fmt::format("expected \"A B\" or [\"A\", \"B\"], found {}", item.dump()));
    }
    const auto ida = m.token_to_id(a);
    const auto idb = m.token_to_id(b);
    const std::string merged = std::string(a) + std::string(b.substr(std::min(prefix_len, b.size())));
    const auto idm = m.token_to_id(merged);
    if (!ida || !idb || !idm) {
      const std::string_view missing = !ida ? a : !idb ? b : std::string_view(merged);
      src.fail(ErrorCode::kParse, fmt::format("model.merges[{}]", i),
               fmt::format("token \"{}\" is not in model.vocab", missing));
    }
    // The first occurrence of a pair wins (HF keeps the lowest rank as well).
    m.merges_.try_emplace(pair_key(*ida, *idb), Merge{static_cast<int32_t>(i), *idm});
  }
  return m;
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || !has_token_[id]) return nullptr;
  return &tokens_[id];
}

const BpeModel::Merge* BpeModel::find_merge(int32_t a, int32_t b) const {
  auto it = merges_.find(pair_key(a, b));
  return it == merges_.end() ? nullptr : &it->second;
}

// One id per character (or per byte with byte_fallback, or unk), as HF's BPE::merge_word does.
void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
  int32_t pending_unk = -1;  // with fuse_unk, consecutive unknown characters become one
  std::string scratch;
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    i += std::min(utf8_length_from_lead(static_cast<unsigned char>(word[i])), word.size() - i);
    std::string_view ch = word.substr(start, i - start);
    std::string_view key = ch;
    if ((start > 0 && !continuing_subword_prefix_.empty()) || (i == word.size() && !end_of_word_suffix_.empty())) {
      scratch.clear();
      if (start > 0) scratch += continuing_subword_prefix_;
      scratch += ch;
      if (i == word.size()) scratch += end_of_word_suffix_;
      key = scratch;
    }
    if (auto id = token_to_id(key)) {
      if (pending_unk >= 0) ids.push_back(pending_unk);
      pending_unk = -1;
      ids.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : key) all = all && byte_ids_[b] >= 0;
      if (all) {
        for (unsigned char b : key) ids.push_back(byte_ids_[b]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !fuse_unk_) ids.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) ids.push_back(pending_unk);
}

void BpeModel::merge_all(std::vector<int32_t>& ids) const {
  const size_t n = ids.size();
  if (n < 2) return;
  struct Symbol {
    int32_t id;
    int32_t prev;  // -1: none
    int32_t next;  // -1: none
    bool alive;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t new_id;
    bool operator<(const Candidate& o) const {  // top() = lowest rank, then leftmost
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Symbol> sym(n);
  for (size_t k = 0; k < n; ++k) {
    sym[k] = {ids[k], static_cast<int32_t>(k) - 1, k + 1 < n ? static_cast<int32_t>(k + 1) : -1, true};
  }
  std::vector<Candidate> heap_storage;
  heap_storage.reserve(n);
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(heap_storage));
  for (size_t k = 0; k + 1 < n; ++k) {
    if (const Merge* m = find_merge(ids[k], ids[k + 1])) queue.push({m->rank, static_cast<int32_t>(k), m->new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = sym[left.next];
    const Merge* m = find_merge(left.id, right.id);
    if (m == nullptr || m->new_id != top.new_id) continue;  // stale: a neighbour changed
    left.id = top.new_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const Merge* pm = find_merge(sym[left.prev].id, left.id)) queue.push({pm->rank, left.prev, pm->new_id});
    }
    if (left.next >= 0) {
      if (const Merge* nm = find_merge(left.id, sym[left.next].id)) queue.push({nm->rank, top.pos, nm->new_id});
    }
  }
  ids.clear();
  for (int32_t k = 0; k >= 0; k = sym[k].next) ids.push_back(sym[k].id);
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  std::vector<int32_t> ids;
  ids.reserve(word.size());
  initial_symbols(word, ids);
  merge_all(ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

}  // namespace fdpp::tok

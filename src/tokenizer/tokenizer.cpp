// Tokenizer: loading tokenizer.json + tokenizer_config.json, encode and decode.
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>

#include <algorithm>

#include "fdpp/status.h"
#include "tokenizer/json_source.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace fdpp {

using tok::json;
using tok::JsonSource;

namespace {

std::vector<tok::AddedToken> read_added_tokens(const JsonSource& src) {
  std::vector<tok::AddedToken> out;
  const json* list = JsonSource::find(src.root(), "added_tokens");
  if (list == nullptr) return out;
  if (!list->is_array()) src.fail(ErrorCode::kParse, "added_tokens", "expected an array");
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string field = JsonSource::index("added_tokens", i);
    const json& j = (*list)[i];
    tok::AddedToken t;
    const int64_t id = src.int_at(j, field, "id");
    if (id < 0 || id > INT32_MAX) src.fail(ErrorCode::kParse, JsonSource::join(field, "id"), "out of range");
    t.id = static_cast<int32_t>(id);
    t.content = src.string_at(j, field, "content");
    tok::require_valid_utf8(t.content, fmt::format("{}: field '{}.content'", src.name(), field));
    t.single_word = src.bool_or(j, field, "single_word", false);
    t.lstrip = src.bool_or(j, field, "lstrip", false);
    t.rstrip = src.bool_or(j, field, "rstrip", false);
    t.special = src.bool_or(j, field, "special", false);
    t.normalized = src.bool_or(j, field, "normalized", !t.special);
    out.push_back(std::move(t));
  }
  return out;
}

// bos_token / eos_token in tokenizer_config.json: a string, {"content": ...}, or null.
std::optional<std::string> config_token(const JsonSource& cfg, const char* key) {
  const json* v = JsonSource::find(cfg.root(), key);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return cfg.string_at(*v, key, "content");
  cfg.fail(ErrorCode::kParse, key,
           fmt::format("expected a string or an object with \"content\", found {}", JsonSource::type_name(*v)));
}

// HF transformers' clean_up_tokenization: removes spaces before punctuation and contractions.
void clean_up_tokenization(std::string& s) {
  static const std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},     {" ?", "?"},     {" !", "!"},     {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) tok::replace_all(s, from, to);
}

}  // namespace

std::optional<int32_t> Tokenizer::Impl::token_id(std::string_view token) const {
  if (auto it = added_by_content.find(token); it != added_by_content.end()) return it->second;
  return model.token_to_id(token);
}

void Tokenizer::Impl::encode_segment(std::string_view text, bool at_start, std::vector<int32_t>& ids) const {
  std::string normalized(text);
  if (normalizer) normalizer->normalize(normalized);
  if (normalized.empty()) return;
  std::vector<tok::Piece> pieces;
  auto run_model = [&](std::vector<tok::Piece>& ps) {
    if (pre_tokenizer) pre_tokenizer->pre_tokenize(ps);
    for (const tok::Piece& p : ps) model.tokenize(p.text, ids);
    ps.clear();
  };
  if (normalized_matcher.empty()) {
    pieces.push_back({std::move(normalized), at_start});
    run_model(pieces);
    return;
  }
  for (const tok::Segment& seg : normalized_matcher.split(normalized, added)) {
    if (seg.token >= 0) {
      ids.push_back(added[seg.token].id);
    } else {
      pieces.push_back({normalized.substr(seg.start, seg.end - seg.start), at_start && seg.start == 0});
      run_model(pieces);
    }
  }
}

Tokenizer Tokenizer::load(const std::filesystem::path& model_dir) {
  std::error_code ec;
  // A path to the tokenizer.json itself is accepted too; the config is then looked for beside it.
  const bool is_file = std::filesystem::is_regular_file(model_dir, ec);
  if (!is_file && !std::filesystem::is_directory(model_dir, ec)) {
    throw Error(ErrorCode::kNotFound, fmt::format("{}: tokenizer directory not found", model_dir.string()));
  }
  const auto dir = is_file ? model_dir.parent_path() : model_dir;
  const auto config = dir / "tokenizer_config.json";
  return from_files(is_file ? model_dir : dir / "tokenizer.json",
                    std::filesystem::exists(config, ec) ? std::optional(config) : std::nullopt);
}

Tokenizer Tokenizer::from_files(const std::filesystem::path& tokenizer_json,
                                const std::optional<std::filesystem::path>& tokenizer_config) {
  const JsonSource src = JsonSource::read(tokenizer_json);
  const json& root = src.root();
  std::optional<JsonSource> config;
  if (tokenizer_config) config = JsonSource::read(*tokenizer_config);
  auto impl = std::make_unique<Impl>();
  impl->model = tok::BpeModel::from_json(src.at(root, "", "model"), src);
  impl->vocab_size = impl->model.size();

  impl->added = read_added_tokens(src);
  for (size_t i = 0; i < impl->added.size(); ++i) {
    const tok::AddedToken& t = impl->added[i];
    impl->added_by_id.emplace(t.id, i);
    impl->added_by_content.emplace(t.content, t.id);
    impl->vocab_size = std::max(impl->vocab_size, static_cast<size_t>(t.id) + 1);
  }

  const json null_json;
  auto member = [&](const char* key) -> const json& {
    const json* j = JsonSource::find(root, key);
    return j ? *j : null_json;
  };
  impl->normalizer = tok::make_normalizer(member("normalizer"), src, "normalizer");
  impl->pre_tokenizer = tok::make_pre_tokenizer(member("pre_tokenizer"), src, "pre_tokenizer");
  impl->decoder = tok::make_decoder(member("decoder"), src, "decoder");
  impl->post_processor = tok::PostProcessor::from_json(member("post_processor"), src, "post_processor");

  // Added tokens are found in the raw input (normalized=false) or in each normalized piece,
  // against their normalized content (as HF does). With split_special_tokens (tokenizer_config),
  // special tokens are not recognised in the input: their text is encoded like any other.
  const bool split_special = config && config->bool_or(config->root(), "", "split_special_tokens", false);
  for (size_t i = 0; i < impl->added.size(); ++i) {
    const tok::AddedToken& t = impl->added[i];
    if (split_special && t.special) continue;
    if (!t.normalized) {
      impl->raw_matcher.add(t.content, static_cast<int32_t>(i));
    } else {
      std::string content = t.content;
      if (impl->normalizer) impl->normalizer->normalize(content);
      impl->normalized_matcher.add(content, static_cast<int32_t>(i));
    }
  }

  // BOS/EOS: from the post-processor, overridden by tokenizer_config.json's add_bos_token /
  // add_eos_token when present (what transformers' Llama-family fast tokenizers do).
  std::vector<int32_t> before = impl->post_processor.prefix();
  std::vector<int32_t> after = impl->post_processor.suffix();
  if (!before.empty()) impl->bos = before.front();
  if (config) {
    const JsonSource& cfg = *config;
    auto resolve = [&](const char* key) -> std::optional<int32_t> {
      auto text = config_token(cfg, key);
      if (!text) return std::nullopt;
      auto id = impl->token_id(*text);
      if (!id) cfg.fail(ErrorCode::kParse, key, fmt::format("token \"{}\" is not in {}", *text, src.name()));
      return id;
    };
    if (auto bos = resolve("bos_token")) impl->bos = bos;
    impl->eos = resolve("eos_token");
    impl->clean_up_tokenization_spaces = cfg.bool_or(cfg.root(), "", "clean_up_tokenization_spaces", false);
    if (JsonSource::find(cfg.root(), "add_bos_token") != nullptr && impl->bos) {
      const bool add = cfg.bool_or(cfg.root(), "", "add_bos_token", false);
      std::erase(before, *impl->bos);
      if (add) before.insert(before.begin(), *impl->bos);
    }
    if (JsonSource::find(cfg.root(), "add_eos_token") != nullptr && impl->eos) {
      const bool add = cfg.bool_or(cfg.root(), "", "add_eos_token", false);
      std::erase(after, *impl->eos);
      if (add) after.push_back(*impl->eos);
    }
  }
  impl->post_processor = tok::PostProcessor::with_ids(std::move(before), std::move(after));
  return Tokenizer(std::move(impl));
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special) const {
  tok::require_valid_utf8(text, "text to encode");
  const Impl& m = *impl_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (m.raw_matcher.empty()) {
    m.encode_segment(text, true, ids);
  } else {
    for (const tok::Segment& seg : m.raw_matcher.split(text, m.added)) {
      if (seg.token >= 0) ids.push_back(m.added[seg.token].id);
      else m.encode_segment(text.substr(seg.start, seg.end - seg.start), seg.start == 0, ids);
    }
  }
  if (add_special) m.post_processor.apply(ids);
  return ids;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const Impl& m = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (auto it = m.added_by_id.find(id); it != m.added_by_id.end()) {
      const tok::AddedToken& t = m.added[it->second];
      if (!(skip_special && t.special)) tokens.push_back(t.content);
    } else if (const std::string* t = m.model.id_to_token(id)) {
      tokens.push_back(*t);
    }  // unknown ids are skipped, as HF does
  }
  std::string text;
  if (m.decoder) {
    m.decoder->decode_chain(tokens);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
  }
  if (m.clean_up_tokenization_spaces) clean_up_tokenization(text);
  return text;
}

size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const { return impl_->token_id(token); }

std::string Tokenizer::token_text(int32_t id) const {
  if (auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) return impl_->added[it->second].content;
  if (const std::string* t = impl_->model.id_to_token(id)) return *t;
  throw Error(ErrorCode::kOutOfRange, fmt::format("token id {} is not in the vocabulary (size {})", id, vocab_size()));
}

bool Tokenizer::is_special(int32_t id) const {
  auto it = impl_->added_by_id.find(id);
  return it != impl_->added_by_id.end() && impl_->added[it->second].special;
}

std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }

std::vector<int32_t> Tokenizer::eos_ids() const {
  if (impl_->eos) return {*impl_->eos};
  return {};
}

}  // namespace fdpp

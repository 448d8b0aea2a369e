// Tokenizer for Hugging Face tokenizer.json files (model type BPE): SentencePiece-style
// (Llama-2, Mistral, stories260K: '▁' normalizers, byte fallback) and byte-level (GPT-2 style:
// Llama-3, Qwen2: ByteLevel + Split regex), with added/special tokens and tokenizer_config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fdpp {

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json (add_bos_token,
  // add_eos_token, bos_token, eos_token). Throws fdpp::Error naming the file and field on a
  // missing or malformed file or an unsupported model/normalizer/pre_tokenizer/decoder type.
  static Tokenizer load(const std::filesystem::path& model_dir);
  static Tokenizer from_files(const std::filesystem::path& tokenizer_json,
                              const std::optional<std::filesystem::path>& tokenizer_config);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes UTF-8 text. add_special: add BOS/EOS as the post-processor / tokenizer_config say
  // (what HF's tokenizer(text) does). Throws fdpp::Error (kInvalidArgument) on invalid UTF-8,
  // giving the byte offset.
  std::vector<int32_t> encode(std::string_view text, bool add_special = true) const;

  // Decodes ids to UTF-8 text (what HF's decode does); invalid byte sequences become U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  size_t vocab_size() const;                 // largest id + 1, added tokens included
  std::optional<int32_t> token_id(std::string_view token) const;
  std::string token_text(int32_t id) const;  // the raw vocabulary string
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_id() const;
  std::vector<int32_t> eos_ids() const;      // from tokenizer_config.json eos_token, if any

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of generated ids into text pieces as they arrive, the way vLLM and HF's
// TextStreamer do: decodes with the prompt as left context (so a leading '▁' becomes a space
// exactly when it should) and holds back bytes that do not yet form complete UTF-8 characters.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, std::span<const int32_t> prompt_ids);
  std::string push(int32_t id);  // the new text this id completes (may be empty)
  std::string flush();           // whatever is held back, at the end of generation
  const std::string& text() const { return text_; }  // everything emitted so far

 private:
  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;     // context window + generated ids
  size_t prefix_offset_ = 0;     // ids_[prefix_offset_, read_offset_) is already-emitted context
  size_t read_offset_ = 0;
  std::string text_;
};

}  // namespace fdpp

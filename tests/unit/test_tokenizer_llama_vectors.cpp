// The 46 tokenizer vectors llama.cpp ships for the Llama-2 SentencePiece vocabulary, encoded
// through the same vocabulary's tokenizer.json (HF's conversion): ids must match exactly.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

using fdpp::Tokenizer;

std::filesystem::path llama_dir() { return fdpp::test::shared_dir() / "testdata" / "tokenizer-llama2"; }

// .inp: each case is followed by "\n__ggml_vocab_test__\n" (the case's own text never ends with
// that newline). .out: one line per case, the ids separated (and preceded) by spaces, no BOS.
struct Vectors {
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> expected;
};

Vectors read_vectors() {
  const std::string inp = fdpp::test::read_file(llama_dir() / "ggml-vocab-llama-spm.gguf.inp");
  const std::string out = fdpp::test::read_file(llama_dir() / "ggml-vocab-llama-spm.gguf.out");
  Vectors v;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0;;) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) break;
    v.inputs.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream ids(line);
    std::vector<int32_t> row;
    for (int32_t id; ids >> id;) row.push_back(id);
    v.expected.push_back(std::move(row));
  }
  return v;
}

std::string show(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

TEST(TokenizerLlamaVectors, AllCasesMatchLlamaCpp) {
  FDPP_REQUIRE_PATH(llama_dir() / "ggml-vocab-llama-spm.gguf.inp");
  const Tokenizer tok = Tokenizer::load(llama_dir());
  const Vectors v = read_vectors();
  ASSERT_EQ(v.inputs.size(), 46u);
  ASSERT_EQ(v.expected.size(), 46u);
  int passed = 0;
  for (size_t i = 0; i < v.inputs.size(); ++i) {
    const auto ids = tok.encode(v.inputs[i], /*add_special=*/false);
    EXPECT_EQ(ids, v.expected[i]) << "case " << i << " input \"" << v.inputs[i] << "\"\n  got     " << show(ids)
                                  << "\n  expected" << show(v.expected[i]);
    passed += ids == v.expected[i];
  }
  EXPECT_EQ(passed, 46);
}

TEST(TokenizerLlamaVectors, DecodeRoundTrips) {
  FDPP_REQUIRE_PATH(llama_dir() / "ggml-vocab-llama-spm.gguf.inp");
  const Tokenizer tok = Tokenizer::load(llama_dir());
  for (const std::string& s : read_vectors().inputs) {
    EXPECT_EQ(tok.decode(tok.encode(s, false)), s);
    EXPECT_EQ(tok.decode(tok.encode(s, true)), s) << "BOS is skipped on decode";
  }
}

TEST(TokenizerLlamaVectors, SpecialTokensAndBos) {
  FDPP_REQUIRE_PATH(llama_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(llama_dir());
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int32_t>{1, 15043, 3186}));
  EXPECT_EQ(tok.encode(""), (std::vector<int32_t>{1}));
  EXPECT_EQ(tok.encode("", false), (std::vector<int32_t>{}));
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_ids(), (std::vector<int32_t>{2}));
  EXPECT_EQ(tok.vocab_size(), 32000u);
  EXPECT_EQ(tok.token_id("<s>"), 1);
  EXPECT_EQ(tok.token_text(15043), "\xE2\x96\x81Hello");
  EXPECT_TRUE(tok.is_special(2));
  EXPECT_FALSE(tok.is_special(15043));
  // These added tokens are "normalized": matched after the normalizer, as "▁<s>" (HF behaviour;
  // the npm comparison covers more of this).
  EXPECT_EQ(tok.encode("a <s> b</s>c", false), (std::vector<int32_t>{263, 1, 289, 829, 29879, 29958, 29883}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{1, 15043, 2}, /*skip_special=*/false), "<s> Hello</s>");
  // Byte fallback: a character missing from the vocabulary becomes its UTF-8 bytes.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{29871, 243, 162, 169, 156}), "\xF0\x9F\xA6\x99");
  // A lone byte of a multi-byte character decodes to U+FFFD.
  EXPECT_EQ(tok.decode(std::vector<int32_t>{243, 162}), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(TokenizerLlamaVectors, LongInputIsFast) {
  FDPP_REQUIRE_PATH(llama_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(llama_dir());
  std::string text;
  for (int i = 0; i < 2000; ++i) text += "The quick brown fox jumps over the lazy dog. ";
  const auto start = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, false);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GT(ids.size(), 20000u);
  EXPECT_EQ(tok.decode(ids), text.substr(0, text.size()));
  EXPECT_LT(ms, 2000.0) << "90k characters, one SentencePiece word";
}

}  // namespace

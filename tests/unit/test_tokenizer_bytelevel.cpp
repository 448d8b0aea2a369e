// The byte-level (GPT-2 / Llama-3 style) tokenizer in tests/tokenizer_npm/bytelevel, made by
// make_bytelevel.mjs: special tokens, BOS from TemplateProcessing, round trips, streaming.
// (tests/tokenizer_npm/compare.mjs checks its ids against the npm reference implementation.)
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

using fdpp::StreamDecoder;
using fdpp::Tokenizer;

std::filesystem::path bytelevel_dir() { return fdpp::test::test_data_dir() / "tokenizer_npm" / "bytelevel"; }

const std::vector<std::string> kTexts = {
    "",
    "Hello world",
    "  The model reads the prompt.\n\n",
    "I'm sure you're right, they'll see.",
    "int main() {\n\treturn 0;\n}",
    "12345678 3.14159",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\xA6\x99 caf\xC3\xA9",             // 日本語 🦙 café
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 family",  // ZWJ sequence
};

TEST(TokenizerByteLevel, LoadsWithSpecialTokens) {
  const Tokenizer tok = Tokenizer::load(bytelevel_dir());
  const int32_t bot = *tok.token_id("<|begin_of_text|>");
  const int32_t eot = *tok.token_id("<|eot_id|>");
  EXPECT_EQ(tok.bos_id(), bot);
  EXPECT_EQ(tok.eos_ids(), (std::vector<int32_t>{eot}));
  EXPECT_TRUE(tok.is_special(eot));
  EXPECT_FALSE(tok.is_special(*tok.token_id("<tool>")));
  EXPECT_EQ(tok.vocab_size(), static_cast<size_t>(*tok.token_id("<tool>")) + 1);
  EXPECT_EQ(tok.encode(""), (std::vector<int32_t>{bot}));
  // Ids 0-255 are the bytes, as GPT-2's printable characters.
  EXPECT_EQ(tok.token_text(0x41), "A");
  EXPECT_EQ(tok.token_text(0x20), "\xC4\xA0");  // ' ' -> U+0120 'Ġ'
  EXPECT_EQ(tok.token_text(0x0A), "\xC4\x8A");  // '\n' -> U+010A 'Ċ'
}

TEST(TokenizerByteLevel, SpecialTokensAreSplitOut) {
  const Tokenizer tok = Tokenizer::load(bytelevel_dir());
  const int32_t bot = *tok.token_id("<|begin_of_text|>");
  const int32_t sh = *tok.token_id("<|start_header_id|>");
  const int32_t eh = *tok.token_id("<|end_header_id|>");
  const int32_t eot = *tok.token_id("<|eot_id|>");
  const std::string chat = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
  const auto ids = tok.encode(chat, false);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids[0], bot);
  EXPECT_EQ(ids[1], sh);
  EXPECT_EQ(ids.back(), eot);
  EXPECT_NE(std::find(ids.begin(), ids.end(), eh), ids.end());
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/false), chat);
  EXPECT_EQ(tok.decode(ids), "user\n\nHi");
}

TEST(TokenizerByteLevel, RoundTrips) {
  const Tokenizer tok = Tokenizer::load(bytelevel_dir());
  for (const std::string& s : kTexts) {
    const auto ids = tok.encode(s);
    EXPECT_EQ(ids[0], *tok.bos_id());
    EXPECT_EQ(tok.decode(ids), s);
  }
  // Merges were learned from English: common words are single tokens.
  EXPECT_LT(tok.encode("the model reads the text", false).size(), 12u);
}

TEST(TokenizerByteLevel, StreamDecoderReassemblesMultiByteCharacters) {
  const Tokenizer tok = Tokenizer::load(bytelevel_dir());
  const auto prompt = tok.encode("Say:");
  for (const std::string& s : kTexts) {
    StreamDecoder stream(tok, prompt);
    std::string text;
    for (int32_t id : tok.encode(s, false)) {
      const std::string piece = stream.push(id);
      EXPECT_EQ(piece.find("\xEF\xBF\xBD"), std::string::npos) << "partial character emitted for " << s;
      text += piece;
    }
    text += stream.flush();
    EXPECT_EQ(text, s);
  }
}

TEST(TokenizerByteLevel, FlushEmitsAnIncompleteTail) {
  const Tokenizer tok = Tokenizer::load(bytelevel_dir());
  // The first byte of "🦙" alone: held back by push, replaced by U+FFFD at flush.
  const int32_t f0 = *tok.token_id("\xC3\xB0");  // byte 0xF0 -> U+00F0 'ð'
  StreamDecoder stream(tok, {});
  EXPECT_EQ(stream.push(*tok.token_id("a")), "a");
  EXPECT_EQ(stream.push(f0), "");
  EXPECT_EQ(stream.flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(stream.text(), "a\xEF\xBF\xBD");
}

}  // namespace

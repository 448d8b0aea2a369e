// stories260K's tokenizer (SentencePiece-style, 512 tokens): encode, decode and streaming decode
// against goldens from HF transformers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

using fdpp::StreamDecoder;
using fdpp::Tokenizer;

const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378};
const std::vector<int32_t> kGenerated = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267,
                                         337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432,
                                         358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337,
                                         335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310};
const std::string kGeneratedText =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, "
    "red ball. She wanted to play with it, but it was too high.\nLily";

TEST(TokenizerStories, EncodeMatchesTransformers) {
  FDPP_REQUIRE_PATH(fdpp::test::stories_model_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(fdpp::test::stories_model_dir());
  EXPECT_EQ(tok.encode("Once upon a time"), kPrompt);
  EXPECT_EQ(tok.encode("Once upon a time", false), std::vector<int32_t>(kPrompt.begin() + 1, kPrompt.end()));
  EXPECT_EQ(tok.vocab_size(), 512u);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_ids(), (std::vector<int32_t>{2}));
}

TEST(TokenizerStories, DecodeMatchesTransformers) {
  FDPP_REQUIRE_PATH(fdpp::test::stories_model_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(fdpp::test::stories_model_dir());
  EXPECT_EQ(tok.decode(kGenerated), kGeneratedText);
  EXPECT_EQ(tok.decode(kPrompt), "Once upon a time");
  EXPECT_EQ(tok.decode(kPrompt, /*skip_special=*/false), "<s> Once upon a time");
}

TEST(TokenizerStories, StreamDecoderEmitsTheSameText) {
  FDPP_REQUIRE_PATH(fdpp::test::stories_model_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(fdpp::test::stories_model_dir());
  StreamDecoder stream(tok, kPrompt);
  std::string text;
  std::vector<std::string> pieces;
  for (int32_t id : kGenerated) {
    pieces.push_back(stream.push(id));
    text += pieces.back();
  }
  text += stream.flush();
  EXPECT_EQ(text, kGeneratedText);
  EXPECT_EQ(stream.text(), kGeneratedText);
  EXPECT_EQ(pieces[0], ",");        // no space after the prompt's "time"
  EXPECT_EQ(pieces[1], " there");   // "▁there" -> " there"
}

TEST(TokenizerStories, StreamDecoderWithoutPromptDropsTheFirstSpace) {
  FDPP_REQUIRE_PATH(fdpp::test::stories_model_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(fdpp::test::stories_model_dir());
  const auto ids = tok.encode("Once upon a time there was", false);
  StreamDecoder stream(tok, {});
  std::string text;
  for (int32_t id : ids) text += stream.push(id);
  text += stream.flush();
  EXPECT_EQ(text, tok.decode(ids));
  EXPECT_EQ(text, "Once upon a time there was");
}

TEST(TokenizerStories, StreamDecoderHoldsBackPartialCharacters) {
  FDPP_REQUIRE_PATH(fdpp::test::stories_model_dir() / "tokenizer.json");
  const Tokenizer tok = Tokenizer::load(fdpp::test::stories_model_dir());
  // "é" is not in the 512-token vocabulary: byte fallback gives <0xC3> <0xA9>.
  const auto ids = tok.encode("caf\xC3\xA9 ok", false);
  StreamDecoder stream(tok, kPrompt);
  std::vector<std::string> pieces;
  for (int32_t id : ids) pieces.push_back(stream.push(id));
  pieces.push_back(stream.flush());
  std::string text;
  for (const auto& p : pieces) {
    EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << "no U+FFFD for a character still arriving";
    text += p;
  }
  EXPECT_EQ(text, " caf\xC3\xA9 ok");
}

}  // namespace

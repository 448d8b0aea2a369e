// Bad input to the tokenizer: each error names the problem (file, field, byte offset).
#include <gtest/gtest.h>

#include <string>

#include "fdpp/status.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer.h"

namespace {

using fdpp::ErrorCode;
using fdpp::Tokenizer;
using fdpp::test::TempDir;
using fdpp::test::write_file;

// Runs f, expects fdpp::Error with `code`, and returns its message.
template <typename F>
std::string error_of(F&& f, ErrorCode code) {
  try {
    f();
  } catch (const fdpp::Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no fdpp::Error thrown";
  return {};
}

// A minimal valid BPE tokenizer.json over the characters a, b, c.
std::string tiny_tokenizer(const std::string& model_type = "BPE") {
  return R"({"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null,
             "post_processor": null, "decoder": null,
             "model": {"type": ")" + model_type + R"(", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3},
                       "merges": ["a b"]}})";
}

TEST(TokenizerErrors, TinyTokenizerLoads) {
  TempDir dir;
  write_file(dir / "tokenizer.json", tiny_tokenizer());
  const Tokenizer tok = Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode("abcab"), (std::vector<int32_t>{3, 2, 3}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{3, 2}), "ab c");  // no decoder: tokens joined by spaces
  // The tokenizer.json path itself is accepted as well as its directory.
  EXPECT_EQ(Tokenizer::load(dir / "tokenizer.json").encode("ab"), (std::vector<int32_t>{3}));
}

TEST(TokenizerErrors, UnsupportedModelType) {
  for (const char* type : {"WordPiece", "Unigram"}) {
    TempDir dir;
    write_file(dir / "tokenizer.json", tiny_tokenizer(type));
    const std::string msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kUnsupported);
    EXPECT_NE(msg.find((dir / "tokenizer.json").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.type"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"BPE\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(type), std::string::npos) << msg;
  }
}

TEST(TokenizerErrors, MalformedJson) {
  TempDir dir;
  write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0,)");
  const std::string msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kParse);
  EXPECT_NE(msg.find((dir / "tokenizer.json").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MalformedConfig) {
  TempDir dir;
  write_file(dir / "tokenizer.json", tiny_tokenizer());
  write_file(dir / "tokenizer_config.json", "{\"bos_token\": ");
  const std::string msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kParse);
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MissingFileOrDirectory) {
  TempDir dir;
  std::string msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kNotFound);
  EXPECT_NE(msg.find((dir / "tokenizer.json").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
  msg = error_of([&] { Tokenizer::load(dir / "nope"); }, ErrorCode::kNotFound);
  EXPECT_NE(msg.find("nope"), std::string::npos) << msg;
}

TEST(TokenizerErrors, MissingAndBadFields) {
  TempDir dir;
  write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}}})");
  std::string msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kParse);
  EXPECT_NE(msg.find("model.merges"), std::string::npos) << msg;

  write_file(dir / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a z"]}})");
  msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kParse);
  EXPECT_NE(msg.find("model.merges[0]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"z\""), std::string::npos) << msg;

  std::string j = tiny_tokenizer();
  j.replace(j.find("\"normalizer\": null"), 18, R"("normalizer": {"type": "Sequence", "normalizers": [{"type": "BertNormalizer"}]})");
  write_file(dir / "tokenizer.json", j);
  msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kUnsupported);
  EXPECT_NE(msg.find("normalizer.normalizers[0].type"), std::string::npos) << msg;
  EXPECT_NE(msg.find("BertNormalizer"), std::string::npos) << msg;

  j = tiny_tokenizer();
  j.replace(j.find("\"decoder\": null"), 15, R"("decoder": {"type": "WordPiece"})");
  write_file(dir / "tokenizer.json", j);
  msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kUnsupported);
  EXPECT_NE(msg.find("decoder.type"), std::string::npos) << msg;

  j = tiny_tokenizer();
  j.replace(j.find("\"pre_tokenizer\": null"), 21, R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"})");
  write_file(dir / "tokenizer.json", j);
  msg = error_of([&] { Tokenizer::load(dir.path()); }, ErrorCode::kUnsupported);
  EXPECT_NE(msg.find("pre_tokenizer.pattern.Regex"), std::string::npos) << msg;
}

TEST(TokenizerErrors, InvalidUtf8NamesTheByteOffset) {
  TempDir dir;
  write_file(dir / "tokenizer.json", tiny_tokenizer());
  const Tokenizer tok = Tokenizer::load(dir.path());
  struct Case {
    std::string text;
    size_t offset;
    const char* reason;
  };
  const Case cases[] = {
      {"ab\x80" "c", 2, "continuation byte"},           // lone continuation byte
      {"abc\xE2\x82", 3, "truncated"},                  // truncated at the end
      {"a\xE2\x82" "bc", 1, "truncated"},               // truncated in the middle
      {"ab\xC0\xAF", 2, "overlong"},                    // overlong '/'
      {"a\xE0\x80\xAF", 1, "overlong"},                 // overlong, 3 bytes
      {"abc\xED\xA0\x80", 3, "surrogate"},              // U+D800
      {"\xF4\x90\x80\x80", 0, "U+10FFFF"},              // above the Unicode range
      {"ab\xFF", 2, "never occurs"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of([&] { tok.encode(c.text); }, ErrorCode::kInvalidArgument);
    EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
    EXPECT_NE(msg.find("byte offset " + std::to_string(c.offset)), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.reason), std::string::npos) << msg;
  }
}

TEST(TokenizerErrors, BadIdsAreReported) {
  TempDir dir;
  write_file(dir / "tokenizer.json", tiny_tokenizer());
  const Tokenizer tok = Tokenizer::load(dir.path());
  const std::string msg = error_of([&] { tok.token_text(99); }, ErrorCode::kOutOfRange);
  EXPECT_NE(msg.find("99"), std::string::npos) << msg;
  EXPECT_EQ(tok.decode(std::vector<int32_t>{0, 99, 1}), "a b") << "unknown ids are skipped, as HF does";
}

}  // namespace

// The tokenizer's parts one by one: pre-tokenizers (Split behaviors, ByteLevel, Metaspace, the
// Llama-3 regex), normalizers, decoders, added-token matching, the BPE merge order, and the
// tokenizer_config.json overrides. Expected values follow HF tokenizers' documented behaviour.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fdpp/status.h"
#include "support/test_paths.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/pre_tokenizers.h"
#include "tokenizer/tokenizer.h"

namespace {

using fdpp::tok::json;
using fdpp::tok::JsonSource;
using Strings = std::vector<std::string>;

const JsonSource& test_source() {
  static const JsonSource src = JsonSource::from_json("test.json", json::object());
  return src;
}

Strings pre_tokenize(const std::string& config, const std::string& text, bool at_start = true) {
  auto pre = fdpp::tok::make_pre_tokenizer(json::parse(config), test_source(), "pre_tokenizer");
  std::vector<fdpp::tok::Piece> pieces{{text, at_start}};
  pre->pre_tokenize(pieces);
  Strings out;
  for (auto& p : pieces) out.push_back(p.text);
  return out;
}

std::string split_config(const std::string& behavior, bool invert = false) {
  return R"({"type": "Split", "pattern": {"String": "-"}, "behavior": ")" + behavior +
         R"(", "invert": )" + (invert ? "true" : "false") + "}";
}

TEST(TokenizerComponents, SplitBehaviors) {
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split_config("Removed"), text), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_config("Isolated"), text), (Strings{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_config("MergedWithPrevious"), text), (Strings{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_config("MergedWithNext"), text), (Strings{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_config("Contiguous"), text), (Strings{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_config("Removed", true), text), (Strings{"-", "-", "-"}));
  EXPECT_EQ(pre_tokenize(R"({"type": "Split", "pattern": {"Regex": "\\p{N}+"}, "behavior": "Removed",
                             "invert": true})",
                         "ab12cd345"),
            (Strings{"12", "345"}));
}

TEST(TokenizerComponents, Llama3SplitRegex) {
  const std::string config = R"({"type": "Split", "behavior": "Isolated", "invert": false, "pattern": {"Regex":
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}})";
  EXPECT_EQ(pre_tokenize(config, "I'm 12345 cats!!\n\n  ok"),
            (Strings{"I", "'m", " ", "123", "45", " cats", "!!\n\n", " ", " ok"}));
  EXPECT_EQ(pre_tokenize(config, "WE'LL \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"),  // "WE'LL Привет"
            (Strings{"WE", "'LL", " \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"}));
  // U+0085 (NEL) is White_Space for Oniguruma: it is whitespace here too.
  EXPECT_EQ(pre_tokenize(config, "a\xC2\x85 b"), (Strings{"a", "\xC2\x85", " b"}));
}

TEST(TokenizerComponents, ByteLevelPreTokenizer) {
  EXPECT_EQ(pre_tokenize(R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})", "Hello world"),
            (Strings{"\xC4\xA0Hello", "\xC4\xA0world"}));  // "ĠHello", "Ġworld"
  EXPECT_EQ(pre_tokenize(R"({"type": "ByteLevel", "add_prefix_space": false, "use_regex": false})", "a b\n\xC3\xA9"),
            (Strings{"a\xC4\xA0" "b\xC4\x8A\xC3\x83\xC2\xA9"}));  // "aĠbĊÃ©"
}

TEST(TokenizerComponents, MetaspacePreTokenizer) {
  const std::string always = R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": true})";
  const std::string first = R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true})";
  const std::string never = R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never", "split": false})";
  EXPECT_EQ(pre_tokenize(always, "Hello  world"), (Strings{"\u2581Hello", "\u2581", "\u2581world"}));
  EXPECT_EQ(pre_tokenize(always, " Hello"), (Strings{"\u2581Hello"}));  // no second ▁
  EXPECT_EQ(pre_tokenize(first, "Hello world", true), (Strings{"\u2581Hello", "\u2581world"}));
  EXPECT_EQ(pre_tokenize(first, "Hello world", false), (Strings{"Hello", "\u2581world"}));
  EXPECT_EQ(pre_tokenize(never, "Hello world"), (Strings{"Hello\u2581world"}));
}

Strings decode_chain(const std::string& config, Strings tokens) {
  auto dec = fdpp::tok::make_decoder(json::parse(config), test_source(), "decoder");
  dec->decode_chain(tokens);
  return tokens;
}

TEST(TokenizerComponents, Decoders) {
  EXPECT_EQ(decode_chain(R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"})",
                         {"\u2581Hello", "\u2581world"}),
            (Strings{"Hello", " world"}));
  EXPECT_EQ(decode_chain(R"({"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "never"})",
                         {"\u2581Hello", "\u2581world"}),
            (Strings{" Hello", " world"}));
  EXPECT_EQ(decode_chain(R"({"type": "Strip", "content": " ", "start": 1, "stop": 1})", {"  a  ", "b"}),
            (Strings{" a ", "b"}));
  EXPECT_EQ(decode_chain(R"({"type": "ByteFallback"})", {"<0xE2>", "<0x96>", "<0x81>", "x", "<0xE2>", "y"}),
            (Strings{"\u2581", "x", "\xEF\xBF\xBD", "y"}));
  EXPECT_EQ(decode_chain(R"({"type": "ByteFallback"})", {"<0xE2>", "<0x96>"}),
            (Strings{"\xEF\xBF\xBD", "\xEF\xBF\xBD"}));  // one U+FFFD per byte of a bad run
  EXPECT_EQ(decode_chain(R"({"type": "ByteLevel"})", {"\xC4\xA0Hello", "<|eot_id|>", "\xC3\xA2\xC4\xA2"}),
            (Strings{" Hello<|eot_id|>\xEF\xBF\xBD"}));  // a truncated character becomes U+FFFD
  EXPECT_EQ(decode_chain(R"({"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"},
                             "content": " "}, {"type": "Fuse"}]})",
                         {"\u2581a", "\u2581b"}),
            (Strings{" a b"}));
}

std::string normalize(const std::string& config, std::string s) {
  auto n = fdpp::tok::make_normalizer(json::parse(config), test_source(), "normalizer");
  n->normalize(s);
  return s;
}

TEST(TokenizerComponents, Normalizers) {
  EXPECT_EQ(normalize(R"({"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                          {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]})",
                      "a b"),
            "\u2581a\u2581b");
  EXPECT_EQ(normalize(R"({"type": "Prepend", "prepend": "x"})", ""), "");
  EXPECT_EQ(normalize(R"({"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "})", "a    b  c"), "a b c");
}

TEST(TokenizerComponents, NfcNormalizer) {
  std::unique_ptr<fdpp::tok::Normalizer> nfc;
  try {
    nfc = fdpp::tok::make_normalizer(json::parse(R"({"type": "NFC"})"), test_source(), "normalizer");
  } catch (const fdpp::Error& e) {
    ASSERT_EQ(e.code(), fdpp::ErrorCode::kUnsupported);
    GTEST_SKIP() << "built without utf8proc: " << e.what();
  }
  std::string s = "Cafe\xCC\x81 \xE1\x84\x80\xE1\x85\xA1";  // "Café" decomposed, Hangul jamo
  nfc->normalize(s);
  EXPECT_EQ(s, "Caf\xC3\xA9 \xEA\xB0\x80");
}

TEST(TokenizerComponents, AddedTokenMatching) {
  using fdpp::tok::AddedToken;
  std::vector<AddedToken> tokens(4);
  tokens[0].content = "<|eot|>";
  tokens[1].content = "<|eot|>x";  // longer match wins
  tokens[2].content = "<mask>";
  tokens[2].lstrip = tokens[2].rstrip = true;
  tokens[3].content = "cat";
  tokens[3].single_word = true;
  fdpp::tok::AddedTokenMatcher m;
  for (int i = 0; i < 4; ++i) m.add(tokens[i].content, i);
  auto split = [&](const std::string& text) {
    Strings out;
    for (const auto& s : m.split(text, tokens))
      out.push_back((s.token >= 0 ? "#" : "") + text.substr(s.start, s.end - s.start));
    return out;
  };
  EXPECT_EQ(split("a<|eot|>b<|eot|>xc"), (Strings{"a", "#<|eot|>", "b", "#<|eot|>x", "c"}));
  EXPECT_EQ(split("fill  <mask>  in"), (Strings{"fill", "#  <mask>  ", "in"}));
  EXPECT_EQ(split("cat concat cats a cat."), (Strings{"#cat", " concat cats a ", "#cat", "."}));
  EXPECT_EQ(split(""), (Strings{}));
}

// A tokenizer.json with vocabulary {a, b, c, ab, bc, abc, <unk>, ##b, a##b}, merges and model options.
std::string tiny_json(const std::string& merges, const std::string& extra_model = "") {
  return R"({"added_tokens": [{"id": 9, "content": "<s>", "special": true, "normalized": false},
                              {"id": 10, "content": "</s>", "special": true, "normalized": false}],
             "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                {"Sequence": {"id": "A", "type_id": 0}}],
                                "special_tokens": {"<s>": {"id": "<s>", "ids": [9], "tokens": ["<s>"]}}},
             "model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4,
                       "abc": 5, "<unk>": 6, "##b": 7, "a##b": 8}, "merges": )" +
         merges + extra_model + "}}";
}

TEST(TokenizerComponents, BpeMergeOrderAndUnknowns) {
  fdpp::test::TempDir dir;
  fdpp::test::write_file(dir / "tokenizer.json", tiny_json(R"(["b c", "a b", "a bc"])"));
  auto tok = fdpp::Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{5}));       // b c first, then a bc
  EXPECT_EQ(tok.encode("abxyc", false), (std::vector<int32_t>{3, 6, 6, 2}));  // no fuse_unk
  fdpp::test::write_file(dir / "tokenizer.json", tiny_json(R"(["a b", "b c"])", R"(, "fuse_unk": true)"));
  tok = fdpp::Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode("abc", false), (std::vector<int32_t>{3, 2}));  // a b wins: rank 0
  EXPECT_EQ(tok.encode("abxyc", false), (std::vector<int32_t>{3, 6, 2}));
  fdpp::test::write_file(dir / "tokenizer.json",
                         tiny_json(R"([["a", "##b"]])", R"(, "continuing_subword_prefix": "##")"));
  tok = fdpp::Tokenizer::load(dir.path());
  // "a" + "##b" merges into "ab": the prefix is dropped from the right part (HF's rule).
  EXPECT_EQ(tok.encode("ab", false), (std::vector<int32_t>{3}));
}

TEST(TokenizerComponents, ConfigOverridesBosAndEos) {
  fdpp::test::TempDir dir;
  fdpp::test::write_file(dir / "tokenizer.json", tiny_json(R"(["a b"])"));
  auto tok = fdpp::Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode("ab"), (std::vector<int32_t>{9, 3}));
  EXPECT_EQ(tok.bos_id(), 9);
  EXPECT_TRUE(tok.eos_ids().empty());

  fdpp::test::write_file(dir / "tokenizer_config.json",
                         R"({"add_bos_token": false, "add_eos_token": true, "bos_token": "<s>",
                             "eos_token": {"content": "</s>", "lstrip": false}})");
  tok = fdpp::Tokenizer::load(dir.path());
  EXPECT_EQ(tok.encode("ab"), (std::vector<int32_t>{3, 10}));
  EXPECT_EQ(tok.encode("ab", false), (std::vector<int32_t>{3}));
  EXPECT_EQ(tok.eos_ids(), (std::vector<int32_t>{10}));

  fdpp::test::write_file(dir / "tokenizer_config.json", R"({"split_special_tokens": true})");
  tok = fdpp::Tokenizer::load(dir.path());
  // "</s>" is plain text now: '<', '/', 's', '>' are unknown characters.
  EXPECT_EQ(tok.encode("a</s>", false), (std::vector<int32_t>{0, 6, 6, 6, 6}));
  fdpp::test::write_file(dir / "tokenizer_config.json", R"({"bos_token": "<nope>"})");
  try {
    fdpp::Tokenizer::load(dir.path());
    ADD_FAILURE() << "expected an error for an unknown bos_token";
  } catch (const fdpp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bos_token"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("<nope>"), std::string::npos) << e.what();
  }
}

}  // namespace

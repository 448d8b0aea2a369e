// The safetensors reader and MappedFile: real and synthetic files, F32/F16/BF16, and every
// malformed input with a check that the message names the file, tensor and numbers.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "fdpp/status.h"
#include "model/safetensors.h"
#include "support/expect_error.h"
#include "support/safetensors_builder.h"
#include "support/test_paths.h"

namespace fdpp {
namespace {

using test::TempDir;
using test::write_file;

// Writes bytes to DIR/name and opens it.
SafetensorsFile open_bytes(const TempDir& dir, const std::string& bytes, const std::string& name = "t.safetensors") {
  write_file(dir / name, bytes);
  return SafetensorsFile::open(dir / name);
}

float element(const TensorView& v, size_t i) { return load_as_float(v.data, v.dtype, i); }

// ---------------------------------------------------------------- MappedFile

TEST(SafetensorsMappedFile, MapsContentAndMoves) {
  TempDir dir;
  write_file(dir / "f.bin", "hello mapped world");
  MappedFile a = MappedFile::open(dir / "f.bin");
  ASSERT_EQ(a.size(), 18u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(a.data()), a.size()), "hello mapped world");
  const uint8_t* p = a.data();
  MappedFile b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 18u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  MappedFile c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  c.advise_willneed(0, 1 << 20);  // clipped to the file, no crash
}

TEST(SafetensorsMappedFile, EmptyFileIsValid) {
  TempDir dir;
  write_file(dir / "empty", "");
  const MappedFile m = MappedFile::open(dir / "empty");
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.data(), nullptr);
}

TEST(SafetensorsMappedFile, ErrorsNamePathAndReason) {
  TempDir dir;
  const auto missing = dir / "nope.bin";
  EXPECT_FDPP_ERROR(MappedFile::open(missing), ErrorCode::kNotFound,
                    {missing.string(), "No such file or directory"});
  EXPECT_FDPP_ERROR(MappedFile::open(dir.path()), ErrorCode::kIo, {dir.path().string()});
}

// ---------------------------------------------------------------- valid files

TEST(Safetensors, Stories260KMatchesRawBytes) {
  const auto path = test::stories_model_dir() / "model.safetensors";
  FDPP_REQUIRE_PATH(path);
  const SafetensorsFile st = SafetensorsFile::open(path);
  EXPECT_EQ(st.tensors().size(), 47u);
  const std::string raw = test::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(st.header_size(), n);
  EXPECT_EQ(st.data_offset() + st.data_size(), raw.size());

  // Every view's bytes are the file's bytes at 8 + N + data_offsets[0].
  for (const SafetensorsTensor& t : st.tensors()) {
    ASSERT_EQ(t.view.dtype, DType::kF32) << t.name;
    ASSERT_EQ(t.view.nbytes(), t.data_end - t.data_begin) << t.name;
    ASSERT_EQ(std::memcmp(t.view.data, raw.data() + 8 + n + t.data_begin, t.view.nbytes()), 0) << t.name;
  }
  const SafetensorsTensor* emb = st.find("model.embed_tokens.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->view.shape_string(), "[512, 64]");
  EXPECT_TRUE(emb->view.is_contiguous());
  EXPECT_EQ(emb->data_begin, 0u);
  float expected;  // element [3, 5] straight from the file
  std::memcpy(&expected, raw.data() + 8 + n + (3 * 64 + 5) * 4, 4);
  EXPECT_EQ(static_cast<const float*>(emb->view.row(3))[5], expected);
  EXPECT_EQ(st.find("lm_head.weight"), nullptr);
}

TEST(Safetensors, F32F16Bf16ReadCorrectly) {
  TempDir dir;
  const std::vector<float> values = {0.0f, 1.0f, -2.5f, 3.140625f, 65504.0f, -0.0009765625f};
  const SafetensorsFile st = open_bytes(dir, test::build_safetensors({
                                                 test::f32_tensor("a", {2, 3}, values),
                                                 test::f16_tensor("b", {3, 2}, values),
                                                 test::bf16_tensor("c", {6}, values),
                                             }));
  ASSERT_EQ(st.tensors().size(), 3u);
  const TensorView& a = st.find("a")->view;
  const TensorView& b = st.find("b")->view;
  const TensorView& c = st.find("c")->view;
  EXPECT_EQ(a.dtype, DType::kF32);
  EXPECT_EQ(b.dtype, DType::kF16);
  EXPECT_EQ(c.dtype, DType::kBF16);
  EXPECT_EQ(b.shape_string(), "[3, 2]");
  EXPECT_EQ(b.stride[0], 2);
  EXPECT_EQ(c.shape_string(), "[6]");
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(element(a, i), values[i]) << i;
    EXPECT_EQ(element(b, i), values[i]) << i;  // every value is exact in F16
    EXPECT_EQ(element(c, i), bf16_to_float(float_to_bf16(values[i]))) << i;
  }
  // Raw bits, not only the decoded floats.
  EXPECT_EQ(static_cast<const uint16_t*>(b.data)[2], 0xC100u);  // -2.5 in F16
  EXPECT_EQ(static_cast<const uint16_t*>(c.data)[2], 0xC020u);  // -2.5 in BF16
  EXPECT_EQ(element(c, 3), 3.140625f);                            // exact in BF16
  EXPECT_EQ(element(c, 4), 65536.0f);                             // 65504 rounds up in BF16
}

TEST(Safetensors, UnpaddedHeaderStillGivesAlignedViews) {
  TempDir dir;
  const std::vector<float> v = test::ramp({5, 3}, 0.25f, -1.0f);
  const test::TestTensor t = test::f32_tensor("w", {5, 3}, v);
  std::string header = R"({"w": {"dtype": "F32", "shape": [5, 3], "data_offsets": [0, 60]}})";
  if ((8 + header.size()) % 4 == 0) header += ' ';  // make sure the data section is misaligned
  const std::string bytes = test::raw_safetensors(header, t.bytes);
  const SafetensorsFile st = open_bytes(dir, bytes);
  const TensorView& w = st.tensors().at(0).view;
  EXPECT_NE(st.data_offset() % 4, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % 4, 0u);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(static_cast<const float*>(w.data)[i], v[i]);
}

TEST(Safetensors, EmptyHeaderMetadataAndZeroSizedTensors) {
  TempDir dir;
  EXPECT_TRUE(open_bytes(dir, test::raw_safetensors("{}", "")).tensors().empty());
  const SafetensorsFile st = open_bytes(
      dir, test::raw_safetensors(R"({"__metadata__": {"format": "pt"}, "e": {"dtype": "F32", "shape": [0, 4],)"
                                 R"( "data_offsets": [0, 0]}, "x": {"dtype": "F16", "shape": [], "data_offsets": [0, 2]}})",
                                 std::string("\x00\x3c", 2)));
  ASSERT_EQ(st.tensors().size(), 2u);
  EXPECT_EQ(st.find("e")->view.numel(), 0);
  EXPECT_EQ(st.find("x")->view.rank, 0);
  EXPECT_EQ(*static_cast<const uint16_t*>(st.find("x")->view.data), 0x3c00u);  // 1.0 in F16
  EXPECT_EQ(st.find("__metadata__"), nullptr);
}

// ---------------------------------------------------------------- bad files

TEST(Safetensors, MissingFile) {
  TempDir dir;
  EXPECT_FDPP_ERROR(SafetensorsFile::open(dir / "absent.safetensors"), ErrorCode::kNotFound,
                    {(dir / "absent.safetensors").string()});
}

TEST(Safetensors, ShorterThanEightBytes) {
  TempDir dir;
  EXPECT_FDPP_ERROR(open_bytes(dir, "abcde"), ErrorCode::kParse, {"t.safetensors", "file is 5 bytes", "8 bytes"});
  EXPECT_FDPP_ERROR(open_bytes(dir, ""), ErrorCode::kParse, {"file is 0 bytes"});
}

TEST(Safetensors, HeaderLengthPastEndOfFile) {
  TempDir dir;
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(1000, "{}", "")), ErrorCode::kOutOfRange,
                    {"t.safetensors", "header length 1000", "past the end of the file", "file is 10 bytes"});
  // A random 8-byte prefix (not a safetensors file at all) reads as an absurd length.
  EXPECT_FDPP_ERROR(open_bytes(dir, std::string("GGUF\x03\x00\x00\x00 rest", 13)), ErrorCode::kOutOfRange,
                    {"header length", "not a safetensors file"});
}

TEST(Safetensors, HeaderNotJsonOrNotObject) {
  TempDir dir;
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(R"({"a": {"dtype": )", "")), ErrorCode::kParse,
                    {"t.safetensors", "not valid JSON", "byte"});
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors("[1, 2, 3]", "")), ErrorCode::kParse,
                    {"t.safetensors", "JSON object", "array"});
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(R"({"a": 5})", "")), ErrorCode::kParse,
                    {"tensor 'a'", "expected an object"});
}

TEST(Safetensors, TruncatedData) {
  TempDir dir;
  std::string bytes = test::build_safetensors(
      {test::f32_tensor("first", {4}, test::ramp({4})), test::f32_tensor("second", {8}, test::ramp({8}))});
  bytes.resize(bytes.size() - 10);  // cut the last 10 bytes of the data section
  EXPECT_FDPP_ERROR(open_bytes(dir, bytes), ErrorCode::kOutOfRange,
                    {"t.safetensors", "file is truncated", "describes 48 bytes of tensor data, found 38",
                     "tensor 'second'"});
}

TEST(Safetensors, OffsetsOutOfRange) {
  TempDir dir;
  const std::string data(16, '\0');
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [1000000, 1000008]}})",
                                            data)),
      ErrorCode::kOutOfRange, {"tensor 'w'", "[1000000, 1000008]", "found 16"});
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", data)),
      ErrorCode::kParse, {"tensor 'w'", "data_offsets [8, 0]", "begin is past end"});
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}})", data)),
      ErrorCode::kParse, {"tensor 'w'", "field 'data_offsets'", "[-8,0]"});
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0]}})", data)),
      ErrorCode::kParse, {"tensor 'w'", "field 'data_offsets'", "[begin, end]"});
}

TEST(Safetensors, OverlappingTensors) {
  TempDir dir;
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
      R"( "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})";
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(header, std::string(24, '\0'))), ErrorCode::kParse,
                    {"t.safetensors", "tensors 'a' (data_offsets [0, 16]) and 'b' (data_offsets [8, 24]) overlap"});
}

TEST(Safetensors, UnsupportedDtype) {
  TempDir dir;
  for (const char* dtype : {"F64", "I8", "F8_E4M3", "I32", "BOOL"}) {
    const std::string header = fmt::format(R"({{"w": {{"dtype": "{}", "shape": [1], "data_offsets": [0, 8]}}}})", dtype);
    EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(header, std::string(8, '\0'))), ErrorCode::kUnsupported,
                      {"t.safetensors", "tensor 'w'", fmt::format("dtype {} is not supported", dtype), "BF16"});
  }
}

TEST(Safetensors, ByteSizeMismatchForSupportedDtype) {
  TempDir dir;
  // An F16 [4, 4] tensor needs 32 bytes; the offsets give it 64 (as if it were F32).
  const std::string header = R"({"w": {"dtype": "F16", "shape": [4, 4], "data_offsets": [0, 64]}})";
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(header, std::string(64, '\0'))), ErrorCode::kParse,
                    {"tensor 'w'", "dtype F16 with shape [4, 4] needs 32 bytes", "data_offsets [0, 64] span 64 bytes"});
}

TEST(Safetensors, BadShapesAndMissingFields) {
  TempDir dir;
  const std::string d(8, '\0');
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", d)),
      ErrorCode::kParse, {"tensor 'w'", "field 'shape'", "non-negative integers", "[-2]"});
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}})", d)),
      ErrorCode::kParse, {"tensor 'w'", "field 'shape'", "\"2\""});
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(
                          R"({"w": {"dtype": "F32", "shape": [1, 1, 1, 1, 2], "data_offsets": [0, 8]}})", d)),
      ErrorCode::kUnsupported, {"tensor 'w'", "rank 5"});
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(R"({"w": {"shape": [2], "data_offsets": [0, 8]}})", d)),
                    ErrorCode::kParse, {"tensor 'w'", "missing field 'dtype'"});
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "data_offsets": [0, 8]}})", d)),
                    ErrorCode::kParse, {"tensor 'w'", "missing field 'shape'"});
  EXPECT_FDPP_ERROR(open_bytes(dir, test::raw_safetensors(R"({"w": {"dtype": "F32", "shape": [2]}})", d)),
                    ErrorCode::kParse, {"tensor 'w'", "missing field 'data_offsets'"});
  // A shape whose byte size overflows 64 bits.
  EXPECT_FDPP_ERROR(
      open_bytes(dir, test::raw_safetensors(
                          R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", d)),
      ErrorCode::kParse, {"tensor 'w'", "more than 2^64"});
}

}  // namespace
}  // namespace fdpp

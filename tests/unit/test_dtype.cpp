// DType conversions: half and bfloat16 against independent exact computations, exhaustively.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "core/dtype.h"

namespace fdpp {
namespace {

uint32_t float_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float bits_float(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

bool half_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }
bool bf16_is_nan(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0; }

// The value of an IEEE half from its fields, in double (independent of half_to_float).
double half_value(uint16_t h) {
  const int sign = (h & 0x8000u) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0x1f) {
    return mant ? std::numeric_limits<double>::quiet_NaN()
                : sign * std::numeric_limits<double>::infinity();
  }
  if (exp == 0) return sign * std::ldexp(static_cast<double>(mant), -24);
  return sign * std::ldexp(static_cast<double>(1024 + mant), exp - 25);
}

TEST(DType, NamesAndSizes) {
  EXPECT_EQ(dtype_size(DType::kF32), 4u);
  EXPECT_EQ(dtype_size(DType::kF16), 2u);
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kI32), 4u);
  for (DType d : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32}) {
    auto parsed = parse_dtype(dtype_name(d));
    ASSERT_TRUE(parsed.has_value()) << dtype_name(d);
    EXPECT_EQ(*parsed, d);
  }
  EXPECT_FALSE(parse_dtype("F64").has_value());
  EXPECT_FALSE(parse_dtype("f16").has_value());
}

TEST(DType, HalfToFloatExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    const double expect = half_value(static_cast<uint16_t>(h));
    if (std::isnan(expect)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;
    } else {
      ASSERT_EQ(static_cast<double>(f), expect) << std::hex << h;
      EXPECT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;  // -0 stays -0
    }
  }
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0x7bff), 65504.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(half_to_float(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(half_to_float(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(half_to_float(0xfc00), -std::numeric_limits<float>::infinity());
}

TEST(DType, HalfRoundTripExhaustive) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const auto hh = static_cast<uint16_t>(h);
    const uint16_t back = float_to_half(half_to_float(hh));
    if (half_is_nan(hh)) {
      EXPECT_TRUE(half_is_nan(back)) << std::hex << h << " -> " << back;
      EXPECT_EQ(back & 0x8000u, hh & 0x8000u);
    } else {
      ASSERT_EQ(back, hh) << std::hex << h;
    }
  }
}

// Every midpoint between neighbouring finite halves (exact in float) must round to the even
// neighbour, and one float ulp either side to the nearer one. Covers subnormals, the
// subnormal/normal boundary, each binade boundary and overflow (65504 -> 65536 is inf).
TEST(DType, HalfRoundsToNearestEvenExhaustive) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t lo = 0; lo < 0x7c00u; ++lo) {
      const auto a = static_cast<uint16_t>(sign | lo);
      const auto b = static_cast<uint16_t>(sign | (lo + 1));  // 0x7c00 = inf after 65504
      const double mid = (half_value(a) + (lo + 1 == 0x7c00u ? (sign ? -65536.0 : 65536.0)
                                                             : half_value(b))) / 2;
      const auto mid_f = static_cast<float>(mid);
      ASSERT_EQ(static_cast<double>(mid_f), mid);  // exact in float
      const uint16_t even = (lo & 1u) ? b : a;
      ASSERT_EQ(float_to_half(mid_f), even) << std::hex << lo;
      const float inf = std::numeric_limits<float>::infinity();
      const float toward_a = std::nextafter(mid_f, sign ? inf : -inf);  // smaller magnitude
      const float toward_b = std::nextafter(mid_f, sign ? -inf : inf);
      ASSERT_EQ(float_to_half(toward_a), a) << std::hex << lo;
      ASSERT_EQ(float_to_half(toward_b), b) << std::hex << lo;
    }
  }
}

TEST(DType, HalfSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // tie to even = overflow
  EXPECT_EQ(float_to_half(1e10f), 0x7c00);
  EXPECT_EQ(float_to_half(-1e10f), 0xfc00);
  EXPECT_EQ(float_to_half(inf), 0x7c00);
  EXPECT_EQ(float_to_half(-inf), 0xfc00);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_TRUE(half_is_nan(float_to_half(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(half_is_nan(float_to_half(bits_float(0x7f800001u))));  // signalling NaN, low bits
  EXPECT_TRUE(half_is_nan(float_to_half(bits_float(0xffc00000u))));
  // Subnormals and underflow.
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);               // tie to even (0)
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25) * 1.0001f), 0x0001);     // just above the tie
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);               // tie to even (2)
  EXPECT_EQ(float_to_half(-std::ldexp(1.0f, -26)), 0x8000);              // underflow to -0
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);               // smallest normal
  // Rounding in the normal range: 1 + 2^-11 is halfway between 0x3c00 and 0x3c01.
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(float_to_half(0.1f), 0x2e66);
}

TEST(DType, Bf16RoundTripExhaustive) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const auto bb = static_cast<uint16_t>(b);
    const float f = bf16_to_float(bb);
    EXPECT_EQ(float_bits(f), b << 16);
    const uint16_t back = float_to_bf16(f);
    if (bf16_is_nan(bb)) {
      EXPECT_TRUE(bf16_is_nan(back)) << std::hex << b;
    } else {
      ASSERT_EQ(back, bb) << std::hex << b;
    }
  }
}

TEST(DType, Bf16RoundsToNearestEvenExhaustive) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t lo = 0; lo < 0x7f80u; ++lo) {
      const auto a = static_cast<uint16_t>(sign | lo);
      const auto b = static_cast<uint16_t>(sign | (lo + 1));
      const uint32_t mid_bits = ((sign | lo) << 16) | 0x8000u;  // exactly halfway
      const uint16_t even = (lo & 1u) ? b : a;
      ASSERT_EQ(float_to_bf16(bits_float(mid_bits)), even) << std::hex << lo;
      ASSERT_EQ(float_to_bf16(bits_float(mid_bits - 1)), a) << std::hex << lo;
      ASSERT_EQ(float_to_bf16(bits_float(mid_bits + 1)), b) << std::hex << lo;
    }
  }
}

TEST(DType, Bf16SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16(inf), 0x7f80);
  EXPECT_EQ(float_to_bf16(-inf), 0xff80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_TRUE(bf16_is_nan(float_to_bf16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(bf16_is_nan(float_to_bf16(bits_float(0x7f800001u))));  // would truncate to inf
  EXPECT_TRUE(bf16_is_nan(float_to_bf16(bits_float(0xff800001u))));
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::denorm_min()), 0x0000);  // below half
  EXPECT_EQ(float_to_bf16(bits_float(0x00010000u)), 0x0001);  // a bf16 subnormal survives
  EXPECT_EQ(bf16_to_float(0x0001), bits_float(0x00010000u));
  EXPECT_EQ(float_to_bf16(3.14159265f), 0x4049);
}

TEST(DType, LoadAndConvert) {
  const uint16_t halves[] = {0x3c00, 0xc000, 0x0001, 0x7c00};
  const uint16_t bf16s[] = {0x3f80, 0xc000, 0x0001, 0x7f80};
  const float f32[] = {1.0f, -2.0f, 0.5f, 3.0f};
  const int32_t i32[] = {1, -2, 7, 1 << 20};
  float out[4];
  convert_to_float(halves, DType::kF16, 4, out);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i], half_to_float(halves[i]));
    EXPECT_EQ(load_as_float(halves, DType::kF16, i), out[i]);
  }
  convert_to_float(bf16s, DType::kBF16, 4, out);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i], bf16_to_float(bf16s[i]));
    EXPECT_EQ(load_as_float(bf16s, DType::kBF16, i), out[i]);
  }
  convert_to_float(f32, DType::kF32, 4, out);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], f32[i]);
  convert_to_float(i32, DType::kI32, 4, out);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i], static_cast<float>(i32[i]));
    EXPECT_EQ(load_as_float(i32, DType::kI32, i), out[i]);
  }
}

}  // namespace
}  // namespace fdpp

// UTF-8 helpers for the tokenizer: strict validation (with the byte offset of the first problem),
// code point iteration, lossy conversion (invalid subparts become U+FFFD), Unicode White_Space, and
// the GPT-2 byte <-> printable-character map used by byte-level BPE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fdpp::tok {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

struct Utf8Problem {
  size_t offset = 0;       // byte offset of the first byte of the ill-formed sequence
  const char* reason = "";  // e.g. "unexpected continuation byte 0x80"
  unsigned char byte = 0;   // the offending byte
};

// The first ill-formed sequence in s (Unicode's definition: no overlongs, no surrogates,
// nothing above U+10FFFF), or nullopt when s is valid UTF-8.
std::optional<Utf8Problem> find_invalid_utf8(std::string_view s);

// Throws fdpp::Error(kInvalidArgument) naming `what` and the byte offset when s is not UTF-8.
void require_valid_utf8(std::string_view s, std::string_view what);

// Length of the valid UTF-8 sequence starting at s[i] (1 to 4), or 0 when s[i..] does not start
// with one. Never reads past s.
size_t valid_sequence_length(std::string_view s, size_t i);

// Decodes the code point starting at s[i] of a valid UTF-8 string and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);

// Byte length of the character whose lead byte is b (1 for invalid leads).
inline size_t utf8_length_from_lead(unsigned char b) {
  if (b < 0x80) return 1;
  if ((b & 0xE0) == 0xC0) return 2;
  if ((b & 0xF0) == 0xE0) return 3;
  if ((b & 0xF8) == 0xF0) return 4;
  return 1;
}

void append_utf8(std::string& out, char32_t cp);

// Bytes to text the way Rust's String::from_utf8_lossy does: each maximal ill-formed subpart
// becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Unicode White_Space property (what Rust's char::is_whitespace tests).
bool is_unicode_whitespace(char32_t cp);

// GPT-2's reversible map from the 256 byte values to printable code points.
const std::array<char32_t, 256>& byte_to_code_point();
// The inverse: the byte a code point stands for, or -1 when it stands for none.
int code_point_to_byte(char32_t cp);

}  // namespace fdpp::tok

#include "tokenizer/unicode.h"

#include <fmt/format.h>

#include "fdpp/status.h"

namespace fdpp::tok {
namespace {

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Allowed range of the second byte after lead byte b (Unicode Table 3-7); {0,0} for bad leads.
struct Range {
  unsigned char lo, hi;
};
Range second_byte_range(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return {0x80, 0xBF};
  if (b == 0xE0) return {0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {0x80, 0xBF};
  if (b == 0xED) return {0x80, 0x9F};
  if (b == 0xF0) return {0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {0x80, 0xBF};
  if (b == 0xF4) return {0x80, 0x8F};
  return {0, 0};
}

// How many bytes of s starting at i form the longest prefix of some valid sequence (at least 1).
size_t maximal_subpart(std::string_view s, size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  const Range r = second_byte_range(lead);
  if (r.hi == 0) return 1;
  const size_t need = utf8_length_from_lead(lead);
  size_t n = 1;
  while (n < need && i + n < s.size()) {
    const auto c = static_cast<unsigned char>(s[i + n]);
    const bool ok = n == 1 ? (c >= r.lo && c <= r.hi) : is_continuation(c);
    if (!ok) break;
    ++n;
  }
  return n;
}

}  // namespace

size_t valid_sequence_length(std::string_view s, size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  if (lead < 0x80) return 1;
  const Range r = second_byte_range(lead);
  if (r.hi == 0) return 0;
  const size_t need = utf8_length_from_lead(lead);
  if (i + need > s.size()) return 0;
  const auto second = static_cast<unsigned char>(s[i + 1]);
  if (second < r.lo || second > r.hi) return 0;
  for (size_t k = 2; k < need; ++k)
    if (!is_continuation(static_cast<unsigned char>(s[i + k]))) return 0;
  return need;
}

std::optional<Utf8Problem> find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    const size_t n = valid_sequence_length(s, i);
    if (n > 0) {
      i += n;
      continue;
    }
    Utf8Problem p{i, "", b};
    if (is_continuation(b)) {
      p.reason = "unexpected continuation byte";
    } else if (b == 0xC0 || b == 0xC1) {
      p.reason = "overlong encoding";
    } else if (b >= 0xF5) {
      p.reason = b >= 0xF8 ? "byte that never occurs in UTF-8" : "code point above U+10FFFF";
    } else if (i + 1 >= s.size()) {
      p.reason = "truncated sequence at end of input";
    } else {
      const auto second = static_cast<unsigned char>(s[i + 1]);
      const Range r = second_byte_range(b);
      if (!is_continuation(second)) {
        p.reason = "truncated sequence";
      } else if (second < r.lo || second > r.hi) {
        if (b == 0xE0 || b == 0xF0) p.reason = "overlong encoding";
        else if (b == 0xED) p.reason = "UTF-16 surrogate code point";
        else p.reason = "code point above U+10FFFF";
      } else {
        p.reason = maximal_subpart(s, i) + i >= s.size() ? "truncated sequence at end of input"
                                                          : "truncated sequence";
      }
    }
    return p;
  }
  return std::nullopt;
}

void require_valid_utf8(std::string_view s, std::string_view what) {
  if (auto p = find_invalid_utf8(s)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{} is not valid UTF-8: {} (byte 0x{:02X}) at byte offset {}", what,
                            p->reason, p->byte, p->offset));
  }
}

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  const size_t n = utf8_length_from_lead(b0);
  char32_t cp;
  switch (n) {
    case 1: cp = b0; break;
    case 2: cp = b0 & 0x1F; break;
    case 3: cp = b0 & 0x0F; break;
    default: cp = b0 & 0x07; break;
  }
  for (size_t k = 1; k < n && i + k < s.size(); ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t n = valid_sequence_length(bytes, i);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out.append(kReplacementChar);
      i += maximal_subpart(bytes, i);
    }
  }
  return out;
}

bool is_unicode_whitespace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

namespace {
struct ByteMaps {
  std::array<char32_t, 256> to_cp{};
  std::array<int16_t, 512> from_cp{};  // every mapped code point is below 0x144
  ByteMaps() {
    from_cp.fill(-1);
    char32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<char32_t>(b) : extra++;
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteMaps& byte_maps() {
  static const ByteMaps maps;
  return maps;
}
}  // namespace

const std::array<char32_t, 256>& byte_to_code_point() { return byte_maps().to_cp; }

int code_point_to_byte(char32_t cp) {
  return cp < 512 ? byte_maps().from_cp[cp] : -1;
}

}  // namespace fdpp::tok

// UTF-8 validation shared by error messages, JSON output and the detokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dg {

// Length (1-4) of the valid UTF-8 sequence that starts at s[i], or 0 if the bytes there are not
// one (overlong forms, surrogates and code points above U+10FFFF are invalid). i < s.size().
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  const uint8_t c = b(i);
  const size_t left = s.size() - i;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;  // continuation byte or overlong 2-byte lead
  if (c < 0xE0) return (left >= 2 && (b(i + 1) & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (left < 3) return 0;
    const uint8_t c1 = b(i + 1);
    if ((c1 & 0xC0) != 0x80 || (b(i + 2) & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && c1 < 0xA0) return 0;   // overlong
    if (c == 0xED && c1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (left < 4) return 0;
    const uint8_t c1 = b(i + 1);
    if ((c1 & 0xC0) != 0x80 || (b(i + 2) & 0xC0) != 0x80 || (b(i + 3) & 0xC0) != 0x80) return 0;
    if (c == 0xF0 && c1 < 0x90) return 0;   // overlong
    if (c == 0xF4 && c1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace dg

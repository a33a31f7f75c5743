// Scalar number formats used inside blocks: IEEE half, bfloat16, E4M3 (NVFP4 scales), E2M1.
// Conversions are exact decodes and round-to-nearest-even encodes (numpy's float16 cast).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace dg::quant {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float half_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
  // zero or subnormal: mant * 2^-24, exact in float
  const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

// Round to nearest even; overflow goes to inf, as numpy's astype(float16).
inline uint16_t f32_to_half(float f) {
  const uint32_t x = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return sign | 0x7e00u;           // nan
  if (ax >= 0x477ff000u) return sign | 0x7c00u;          // >= 65520 rounds to inf
  if (ax < 0x38800000u) {                                // below 2^-14: half subnormal
    const float scaled = f32_from_bits(ax) * 16777216.0f; // exact: times 2^24
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));  // default mode: nearest even
  }
  const uint32_t rounded = ax + 0xfffu + ((ax >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - 0x38000000u) >> 13);  // rebias 127 -> 15
}

inline float bf16_to_f32(uint16_t b) { return f32_from_bits(static_cast<uint32_t>(b) << 16); }

// As gguf-py's BF16.quantize_blocks (ggml_compute_fp32_to_bf16): nan made quiet, else RNE.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64u);
  return static_cast<uint16_t>((static_cast<uint64_t>(u) + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Plain E4M3 (bias 7, subnormals man * 2^-9) of byte b with bit 7 ignored; 0x7f is nan in
// float8_e4m3fn, callers decide what it means.
inline float e4m3_to_f32(uint8_t b) {
  const int exp = (b >> 3) & 0xf;
  const int man = b & 7;
  if (exp == 0) return static_cast<float>(man) * 0.001953125f;  // 2^-9
  return std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
}

// GGML's UE4M3 scale as gguf-py decodes it: 0 for bytes 0x00 and 0x7f, else half the E4M3 value
// of the low 7 bits (the half compensates the doubled kvalues table).
inline float ue4m3_to_f32(uint8_t b) {
  if (b == 0 || b == 0x7f) return 0.0f;
  return e4m3_to_f32(b) * 0.5f;
}

// ggml's kvalues_mxfp4: E2M1 values doubled so they are integers.
constexpr int8_t kFP4Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

}  // namespace dg::quant

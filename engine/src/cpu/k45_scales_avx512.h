// The scales of one Q4_K / Q5_K super-block in lanes (include from x86 code only): the panel
// decoder (qpanel.cpp) and the packed-panel reader (qpack.cpp) share it.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace dg {

// [d sc[0..7], -(dmin m[0..7])] of the super-block whose d, dmin and 12 scale bytes start at
// blk (the 6-bit unpacking of k_scales.h in lanes: sc[j] = b[j] & 63, m[j] = b[j+4] & 63,
// sc[j+4] = (b[j+8] & 15) | (b[j] >> 6) << 4, m[j+4] = (b[j+8] >> 4) | (b[j+4] >> 6) << 4, j < 4).
// Reads 20 bytes from blk (the last 4 are never selected).
__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) inline __m512 k45_scales_avx512(const uint8_t* blk) {
  uint16_t dh, dmh;
  std::memcpy(&dh, blk, 2);
  std::memcpy(&dmh, blk + 2, 2);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4));
  const __m128i ia = _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11);
  const __m128i ib = _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7);
  const __m512i za = _mm512_cvtepu8_epi32(_mm_shuffle_epi8(v, ia));
  const __m512i zb = _mm512_cvtepu8_epi32(_mm_shuffle_epi8(v, ib));
  const __m512i shift = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4);
  const __m512i mask = _mm512_setr_epi32(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15);
  const __m512i q = _mm512_or_si512(_mm512_and_si512(_mm512_srlv_epi32(za, shift), mask),
                                    _mm512_slli_epi32(_mm512_srli_epi32(zb, 6), 4));
  const float d = _cvtsh_ss(dh), nm = -_cvtsh_ss(dmh);
  // d * sc, then -(dmin * m) = (-dmin) * m exactly (negation is exact).
  const __m512 f = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d), _mm512_set1_ps(nm));
  return _mm512_mul_ps(f, _mm512_cvtepi32_ps(q));
}

}  // namespace dg

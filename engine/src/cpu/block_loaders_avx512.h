// Per-row block loaders of the AVX-512 int8 paths (include from x86 code only): each returns 64
// consecutive signed codes c = u - Z of one weight row (qpanel.h's table) in one register, and
// the legacy formats also write their fp16 scales. Shared by the panel decoder (qpanel.cpp) and
// the packer (qpack.cpp).
//   __m512i load(const uint8_t* row, int64_t k, float* S, float* M)
// k: absolute value index (a multiple of 64); S / M point at this row's entry of the chunk's
// first group / 32-block (stride kQNR). K-quants write no scales (scales() gives them).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/k45_scales_avx512.h"
#include "cpu/qpanel.h"

namespace dg {

#define DG_PANEL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))

struct LoadQ8_0 {
  static constexpr bool kSuper = false;
  static DG_PANEL_TARGET __m512i load(const uint8_t* row, int64_t k, float* S, float*) {
    const uint8_t* blk = row + (k / 32) * 34;
    uint16_t d0, d1;
    std::memcpy(&d0, blk, 2);
    std::memcpy(&d1, blk + 34, 2);
    S[0] = _cvtsh_ss(d0);
    S[kQNR] = _cvtsh_ss(d1);
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 36));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);  // the int8 codes as they are
  }
};

// Two legacy 4/5-bit blocks: each 16 qs bytes hold values 0..15 (low nibbles) and 16..31 (high).
template <bool Five>
struct LoadQ45_0 {
  static constexpr bool kSuper = false;
  static DG_PANEL_TARGET __m256i block(const uint8_t* blk, float* S) {
    uint16_t d;
    std::memcpy(&d, blk, 2);
    *S = _cvtsh_ss(d);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + (Five ? 6 : 2)));
    const __m128i m = _mm_set1_epi8(15);
    __m256i v = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
    if (Five) {
      uint32_t qh;
      std::memcpy(&qh, blk + 2, 4);
      const __m256i bits = _mm256_movm_epi8(qh);  // byte i = 0xFF where bit i is set
      v = _mm256_or_si256(v, _mm256_and_si256(bits, _mm256_set1_epi8(16)));
    }
    return _mm256_sub_epi8(v, _mm256_set1_epi8(Five ? 16 : 8));  // minus the zero point
  }
  static DG_PANEL_TARGET __m512i load(const uint8_t* row, int64_t k, float* S, float*) {
    constexpr int64_t kBytes = Five ? 22 : 18;
    const uint8_t* blk = row + (k / 32) * kBytes;
    const __m256i lo = block(blk, S), hi = block(blk + kBytes, S + kQNR);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
};

// Q4_K / Q5_K: values 64p..64p+63 of a super-block are qs[32p..32p+32): low nibbles (sub-block
// 2p), then high nibbles (2p + 1); Q5_K's fifth bits are bits 2p and 2p + 1 of qh[l].
template <bool Five>
struct LoadQ45_K {
  static constexpr bool kSuper = true;
  static constexpr int64_t kBytes = Five ? 176 : 144;
  static DG_PANEL_TARGET __m512 scales(const uint8_t* blk) { return k45_scales_avx512(blk); }
  static DG_PANEL_TARGET __m512i load(const uint8_t* row, int64_t k, float*, float*) {
    const uint8_t* blk = row + (k / 256) * kBytes;
    const int p = static_cast<int>((k % 256) / 64);
    const uint8_t* qs = blk + (Five ? 48 : 16) + 32 * p;
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    if (Five) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
      const __m256i one = _mm256_set1_epi8(1);
      lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * p)), one), 4));
      hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * p + 1)), one), 4));
    }
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
  }
};

// Q6_K: chunk c of a super-block (64 values, h = c / 2, pair = c % 2): value 128h + 32q4 + l
// (q4 = 2 pair + j, j = 0, 1) = nibble pair of ql[64h + 32j + l] | ((qh[32h + l] >> 2q4) & 3) << 4.
struct LoadQ6_K {
  static constexpr bool kSuper = true;
  static constexpr int64_t kBytes = 210;
  static DG_PANEL_TARGET __m512 scales(const uint8_t* blk) {  // d * scales[0..15]
    uint16_t dh;
    std::memcpy(&dh, blk + 208, 2);
    const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192)));
    return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(dh)), _mm512_cvtepi32_ps(sc));
  }
  static DG_PANEL_TARGET __m512i load(const uint8_t* row, int64_t k, float*, float*) {
    const uint8_t* blk = row + (k / 256) * 210;
    const int c = static_cast<int>((k % 256) / 64), h = c / 2, pair = c % 2;
    const __m512i ql = _mm512_loadu_si512(blk + 64 * h);  // bytes 0..31: j = 0, 32..63: j = 1
    const __m512i lo = _mm512_and_si512(_mm512_srli_epi16(ql, 4 * pair), _mm512_set1_epi8(15));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
    const __m256i m2 = _mm256_set1_epi8(3);
    const __m256i h0 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(4 * pair)), m2);
    const __m256i h1 = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(4 * pair + 2)), m2);
    const __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1);
    return _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)), _mm512_set1_epi8(32));
  }
};

}  // namespace dg

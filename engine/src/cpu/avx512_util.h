// Small AVX-512 building blocks shared by the kernels (include from x86 code only).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace dg {

// Masks of the live columns of a 32-column tile: first and second 16 (ncols in [0, 32]).
__attribute__((target("avx512f"))) inline void col_masks32(int ncols, __mmask16* m0, __mmask16* m1) {
  *m0 = ncols >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << ncols) - 1);
  *m1 = ncols >= 32 ? static_cast<__mmask16>(0xFFFF)
        : ncols <= 16 ? static_cast<__mmask16>(0)
                      : static_cast<__mmask16>((1u << (ncols - 16)) - 1);
}

// 16 x 16 transpose of 32-bit elements in registers: r[i] lane j <-> r[j] lane i.
__attribute__((target("avx512f"))) inline void transpose16x16_32(__m512i* r) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  // r[4q + s], 128-bit lane L: element 4L + s of rows 4q..4q+3; gather the lanes.
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

}  // namespace dg

// The float steps of the int8 kernels' definition (qgemm.h), shared by the AVX-512 kernels that
// stage panels (qgemm.cpp) and those that read packed codes in place (qgemm_direct.cpp), so both
// round the same way. MR rows x 2 halves of 16 outputs.
#pragma once

#include <cstdint>

#include "cpu/x86_simd.h"

#ifdef DG_X86
namespace dg {

#define DG_QSTEP_INLINE __attribute__((target("avx512f"), always_inline)) inline

// f[r] = fma(float(i[r]), S * d[r], f[r]): a group's integer sums into the accumulators.
// S: the group's 32 scales (64-byte aligned); d: row 0's activation block scale, rows ldb apart.
template <int MR>
DG_QSTEP_INLINE void qstep_scale(__m512 (&f0)[MR], __m512 (&f1)[MR], const __m512i (&i0)[MR], const __m512i (&i1)[MR],
                                 const float* S, const float* d, int64_t ldb) {
  const __m512 S0 = _mm512_load_ps(S), S1 = _mm512_load_ps(S + 16);
  DG_UNROLL
  for (int r = 0; r < MR; ++r) {
    const __m512 dv = _mm512_set1_ps(d[r * ldb]);
    f0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[r]), _mm512_mul_ps(S0, dv), f0[r]);
    f1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[r]), _mm512_mul_ps(S1, dv), f1[r]);
  }
}

// f[r] = fma(M, ds[r], f[r]): a block's offsets (formats with a min). M: 32 offsets (aligned);
// ds: row 0's d * (block sum of the codes), rows ldb apart.
template <int MR>
DG_QSTEP_INLINE void qstep_min(__m512 (&f0)[MR], __m512 (&f1)[MR], const float* M, const float* ds, int64_t ldb) {
  const __m512 M0 = _mm512_load_ps(M), M1 = _mm512_load_ps(M + 16);
  DG_UNROLL
  for (int r = 0; r < MR; ++r) {
    const __m512 sv = _mm512_set1_ps(ds[r * ldb]);
    f0[r] = _mm512_fmadd_ps(M0, sv, f0[r]);
    f1[r] = _mm512_fmadd_ps(M1, sv, f1[r]);
  }
}

#undef DG_QSTEP_INLINE

}  // namespace dg
#endif

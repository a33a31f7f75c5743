// The peak microbenchmarks' loops (diffgemma-bench, diffgemma-expert-kernel): 12 independent
// accumulator chains (enough to cover the latency on two ports); each returns a value made from
// its accumulators so the loop is kept. Operations per iteration: 12 x lanes x 2.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace dg_bench {

inline __attribute__((target("avx512f"))) double fma_f32_avx512(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.0f + 1e-7f * i);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
  alignas(64) float t[16];
  float s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm512_store_ps(t, a[i]);
    for (float v : t) s += v;
  }
  return s;
}
inline __attribute__((target("avx512f"))) double fma_f64_avx512(int64_t iters) {
  __m512d a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_pd(1.0 + 1e-9 * i);
  const __m512d b = _mm512_set1_pd(0.999999), c = _mm512_set1_pd(1e-6);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_pd(a[i], b, c);
  alignas(64) double t[8];
  double s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm512_store_pd(t, a[i]);
    for (double v : t) s += v;
  }
  return s;
}
inline __attribute__((target("avx512f,avx512vnni"))) double dot_i8_avx512(int64_t iters) {
  __m512i a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_epi32(i);
  const __m512i b = _mm512_set1_epi8(3), c = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbusd_epi32(a[i], b, c);
  alignas(64) int32_t t[16];
  int64_t s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm512_store_si512(t, a[i]);
    for (int32_t v : t) s += v;
  }
  return static_cast<double>(s);
}
inline __attribute__((target("avx512f,avx512bf16"))) double dot_bf16_avx512(int64_t iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1e-3f * i);
  const __m512bh b = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x3f803f80));  // (1.0, 1.0)
  const __m512bh c = reinterpret_cast<__m512bh>(_mm512_set1_epi32(0x33d633d6));  // tiny
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm512_dpbf16_ps(a[i], b, c);
  alignas(64) float t[16];
  float s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm512_store_ps(t, a[i]);
    for (float v : t) s += v;
  }
  return s;
}
inline __attribute__((target("avx2,fma"))) double fma_f32_avx2(int64_t iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(1.0f + 1e-7f * i);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
  alignas(32) float t[8];
  float s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_store_ps(t, a[i]);
    for (float v : t) s += v;
  }
  return s;
}
inline __attribute__((target("avx2,fma"))) double fma_f64_avx2(int64_t iters) {
  __m256d a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_pd(1.0 + 1e-9 * i);
  const __m256d b = _mm256_set1_pd(0.999999), c = _mm256_set1_pd(1e-6);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_pd(a[i], b, c);
  alignas(32) double t[4];
  double s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_store_pd(t, a[i]);
    for (double v : t) s += v;
  }
  return s;
}

// Plain AVX2's int8 product instruction: vpmaddubsw multiplies 32 unsigned by signed bytes and
// sums adjacent pairs into int16 (32 products, counted as 64 operations like vpdpbusd's). Each
// chain feeds its result back as the next unsigned operand, so the products stay in the loop (a
// constant product would be hoisted out of it). Every int8 kernel's products pass through this
// instruction, so no kernel can beat it; an exact int32 dot product also needs a vpmaddwd per few
// of them, which on some cores (AMD Zen 3) takes the same port (qgemm_avx2.inc).
// (12 named chains: GCC spills some of a 12-register array here and the loop then times the stack)
inline __attribute__((target("avx2"))) double dot_i8_avx2(int64_t iters) {
  __m256i a0 = _mm256_set1_epi8(1), a1 = _mm256_set1_epi8(2), a2 = _mm256_set1_epi8(3), a3 = _mm256_set1_epi8(4);
  __m256i a4 = _mm256_set1_epi8(5), a5 = _mm256_set1_epi8(6), a6 = _mm256_set1_epi8(7), a7 = _mm256_set1_epi8(8);
  __m256i a8 = _mm256_set1_epi8(9), a9 = _mm256_set1_epi8(10), a10 = _mm256_set1_epi8(11), a11 = _mm256_set1_epi8(12);
  const __m256i c = _mm256_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_maddubs_epi16(a0, c), a1 = _mm256_maddubs_epi16(a1, c), a2 = _mm256_maddubs_epi16(a2, c);
    a3 = _mm256_maddubs_epi16(a3, c), a4 = _mm256_maddubs_epi16(a4, c), a5 = _mm256_maddubs_epi16(a5, c);
    a6 = _mm256_maddubs_epi16(a6, c), a7 = _mm256_maddubs_epi16(a7, c), a8 = _mm256_maddubs_epi16(a8, c);
    a9 = _mm256_maddubs_epi16(a9, c), a10 = _mm256_maddubs_epi16(a10, c), a11 = _mm256_maddubs_epi16(a11, c);
  }
  const __m256i s = _mm256_add_epi16(
      _mm256_add_epi16(_mm256_add_epi16(_mm256_add_epi16(a0, a1), _mm256_add_epi16(a2, a3)),
                       _mm256_add_epi16(_mm256_add_epi16(a4, a5), _mm256_add_epi16(a6, a7))),
      _mm256_add_epi16(_mm256_add_epi16(a8, a9), _mm256_add_epi16(a10, a11)));
  alignas(32) int16_t t[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), s);
  int64_t sum = 0;
  for (int16_t v : t) sum += v;
  return static_cast<double>(sum);
}
inline __attribute__((target("avx2,avxvnni"))) double dot_i8_avxvnni(int64_t iters) {
  __m256i a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_epi32(i);
  const __m256i b = _mm256_set1_epi8(3), c = _mm256_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it)
    for (int i = 0; i < 12; ++i) a[i] = _mm256_dpbusd_avx_epi32(a[i], b, c);
  alignas(32) int32_t t[8];
  int64_t s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), a[i]);
    for (int32_t v : t) s += v;
  }
  return static_cast<double>(s);
}

}  // namespace dg_bench
#endif

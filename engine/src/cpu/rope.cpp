#include "cpu/rope.h"

#include <cmath>

#include "cpu/cpu_features.h"
#include "cpu/x86_simd.h"
#include "util/thread_pool.h"

// GCC 12 warns inside its own conversion intrinsics (they start from _mm256_undefined): a false
// positive, as in qgemm.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

// One row's rotation from pair j0 on: x*cos + rotate_half(x)*sin in fp64, rounded once. (The
// products of two floats are exact in fp64, so only the sum rounds, on every path alike.)
void rotate_tail(float* v, const float* c, const float* s, int64_t j0, int64_t half) {
  for (int64_t j = j0; j < half; ++j) {
    const float x0 = v[j], x1 = v[j + half];
    v[j] = static_cast<float>(static_cast<double>(x0) * c[j] - static_cast<double>(x1) * s[j]);
    v[j + half] = static_cast<float>(static_cast<double>(x1) * c[j] + static_cast<double>(x0) * s[j]);
  }
}

#ifdef DG_X86
__attribute__((target("avx512f"))) int64_t rotate512(float* v, const float* c, const float* s, int64_t half) {
  int64_t j = 0;
  for (; j + 8 <= half; j += 8) {
    const __m512d x0 = _mm512_cvtps_pd(_mm256_loadu_ps(v + j)), x1 = _mm512_cvtps_pd(_mm256_loadu_ps(v + j + half));
    const __m512d cv = _mm512_cvtps_pd(_mm256_loadu_ps(c + j)), sv = _mm512_cvtps_pd(_mm256_loadu_ps(s + j));
    _mm256_storeu_ps(v + j, _mm512_cvtpd_ps(_mm512_sub_pd(_mm512_mul_pd(x0, cv), _mm512_mul_pd(x1, sv))));
    _mm256_storeu_ps(v + j + half, _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(x1, cv), _mm512_mul_pd(x0, sv))));
  }
  return j;
}
#endif

}  // namespace

std::vector<float> rope_inv_freq(float base, int64_t n_rot, const float* freq_factors) {
  std::vector<float> inv(static_cast<size_t>(n_rot / 2));
  for (int64_t j = 0; j < n_rot / 2; ++j) {
    const float expo = static_cast<float>(2 * j) / static_cast<float>(n_rot);
    float f = 1.0f / std::pow(base, expo);
    if (freq_factors) f /= freq_factors[j];
    inv[static_cast<size_t>(j)] = f;
  }
  return inv;
}

void rope_tables(const std::vector<float>& inv_freq, int64_t pos0, int64_t n_pos, float* cos_out,
                 float* sin_out) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (int64_t t = 0; t < n_pos; ++t) {
    const float p = static_cast<float>(pos0 + t);
    for (int64_t j = 0; j < half; ++j) {
      const float ang = p * inv_freq[static_cast<size_t>(j)];
      cos_out[t * half + j] = std::cos(ang);
      sin_out[t * half + j] = std::sin(ang);
    }
  }
}

void rope_apply(ThreadPool& pool, float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim,
                int64_t n_rot, const float* cos_t, const float* sin_t) {
  const int64_t half = n_rot / 2;
  const bool avx512 = active_isa() >= Isa::kAVX512;
  pool.parallel_for(n_tok * n_heads, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t t = r / n_heads;
      float* v = x + r * head_dim;
      const float* c = cos_t + t * half;
      const float* sn = sin_t + t * half;
      int64_t j = 0;
#ifdef DG_X86
      if (avx512) j = rotate512(v, c, sn, half);
#endif
      rotate_tail(v, c, sn, j, half);
    }
  });
}

}  // namespace dg

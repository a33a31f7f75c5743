#include "cpu/axpy.h"

#include "cpu/cpu_features.h"
#include "cpu/x86_simd.h"

namespace dg {
namespace {

#ifdef DG_X86
__attribute__((target("avx512f"))) void axpy512(float* y, const float* x, float a, int64_t n) {
  const __m512 av = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_mul_ps(_mm512_loadu_ps(x + i), av)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 s = _mm512_add_ps(_mm512_maskz_loadu_ps(m, y + i), _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), av));
    _mm512_mask_storeu_ps(y + i, m, s);
  }
}

__attribute__((target("avx2"))) void axpy256(float* y, const float* x, float a, int64_t n) {
  const __m256 av = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), av)));
  for (; i < n; ++i) y[i] += x[i] * a;
}
#endif

}  // namespace

void axpy(float* y, const float* x, float a, int64_t n) {
#ifdef DG_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAVX512) return axpy512(y, x, a, n);
  if (isa != Isa::kScalar) return axpy256(y, x, a, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] += x[i] * a;
}

}  // namespace dg

#include "cpu/norm.h"

#include <cmath>

#include "cpu/cpu_features.h"
#include "cpu/x86_simd.h"
#include "util/thread_pool.h"

// GCC 12 warns inside its own masked intrinsics (they start from _mm512_undefined): a false
// positive, as in qgemm.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

// Each row's sum of squares is one sequential fp64 chain (the definition, rms_norm_row). Rows go
// kRows at a time: kRows independent chains, in vector lanes where the CPU allows, each adding its
// row's squares in the same order (bit-identical; one chain alone is bound by the adder's latency).
constexpr int kRows = 8;

double inv_rms(double ss, int64_t dim, float eps) {
  return 1.0 / std::sqrt(ss / static_cast<double>(dim) + static_cast<double>(eps));
}

// y[i] = x[i] * r (* w[i]) from index i0, in fp64, one rounding to fp32 per element.
void scale_tail(const float* x, float* y, int64_t i0, int64_t dim, const float* w, double r) {
  if (w) {
    for (int64_t i = i0; i < dim; ++i) y[i] = static_cast<float>(x[i] * r * w[i]);
  } else {
    for (int64_t i = i0; i < dim; ++i) y[i] = static_cast<float>(x[i] * r);
  }
}

// ss[j] += the squares of row j (rows ld apart) over [i0, dim), in order.
void sums_tail(const float* x, int64_t ld, int64_t i0, int64_t dim, double (&ss)[kRows]) {
  for (int64_t i = i0; i < dim; ++i)
    for (int j = 0; j < kRows; ++j) ss[j] += static_cast<double>(x[j * ld + i]) * x[j * ld + i];
}

#ifdef DG_X86
#define DG_NORM512 __attribute__((target("avx512f")))

// v[j] = row j (8 doubles) -> v[c] = column c (8 rows).
DG_NORM512 inline void transpose8x8_pd(__m512d (&v)[8]) {
  __m512d a[8], b[8];
  for (int p = 0; p < 4; ++p) {
    a[2 * p] = _mm512_unpacklo_pd(v[2 * p], v[2 * p + 1]);
    a[2 * p + 1] = _mm512_unpackhi_pd(v[2 * p], v[2 * p + 1]);
  }
  for (int h = 0; h < 2; ++h)
    for (int p = 0; p < 2; ++p) {
      b[4 * h + 2 * p] = _mm512_shuffle_f64x2(a[4 * h + p], a[4 * h + p + 2], 0x88);
      b[4 * h + 2 * p + 1] = _mm512_shuffle_f64x2(a[4 * h + p], a[4 * h + p + 2], 0xDD);
    }
  // b[0] columns 0,4 of rows 0-3 | b[1] 2,6 | b[2] 1,5 | b[3] 3,7; b[4..7] the same for rows 4-7
  static constexpr int kCol[4][2] = {{0, 4}, {2, 6}, {1, 5}, {3, 7}};
  for (int q = 0; q < 4; ++q) {
    v[kCol[q][0]] = _mm512_shuffle_f64x2(b[q], b[q + 4], 0x88);
    v[kCol[q][1]] = _mm512_shuffle_f64x2(b[q], b[q + 4], 0xDD);
  }
}

DG_NORM512 int64_t sums512(const float* x, int64_t ld, int64_t dim, double (&ss)[kRows]) {
  __m512d acc = _mm512_setzero_pd();  // lane j: row j
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    __m512d v[8];
    for (int j = 0; j < 8; ++j) v[j] = _mm512_cvtps_pd(_mm256_loadu_ps(x + j * ld + i));
    transpose8x8_pd(v);
    for (int c = 0; c < 8; ++c) acc = _mm512_add_pd(acc, _mm512_mul_pd(v[c], v[c]));
  }
  _mm512_storeu_pd(ss, acc);
  return i;
}

DG_NORM512 int64_t scale512(const float* x, float* y, int64_t dim, const float* w, double r) {
  const __m512d rv = _mm512_set1_pd(r);
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    __m512d v = _mm512_mul_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), rv);
    if (w) v = _mm512_mul_pd(v, _mm512_cvtps_pd(_mm256_loadu_ps(w + i)));
    _mm256_storeu_ps(y + i, _mm512_cvtpd_ps(v));
  }
  return i;
}
#undef DG_NORM512
#endif

void scale_row(const float* x, float* y, int64_t dim, const float* w, double r) {
  int64_t i = 0;
#ifdef DG_X86
  if (active_isa() >= Isa::kAVX512) i = scale512(x, y, dim, w, r);
#endif
  scale_tail(x, y, i, dim, w, r);
}

}  // namespace

void rms_norm_row(const float* x, float* y, int64_t dim, const float* w, float eps) {
  double ss = 0.0;  // accurate sum of squares, like torch's cascaded reduction
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  // One rounding per element (transformers rounds after each fp32 multiply).
  scale_row(x, y, dim, w, inv_rms(ss, dim, eps));
}

void rms_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0, int64_t r1, int64_t dim,
                   const float* w, float eps) {
  int64_t r = r0;
  for (; r + kRows <= r1; r += kRows) {
    const float* xr = x + r * ldx;
    double ss[kRows] = {};
    int64_t i = 0;
#ifdef DG_X86
    if (active_isa() >= Isa::kAVX512) i = sums512(xr, ldx, dim, ss);
#endif
    sums_tail(xr, ldx, i, dim, ss);
    for (int j = 0; j < kRows; ++j) scale_row(xr + j * ldx, y + (r + j) * ldy, dim, w, inv_rms(ss[j], dim, eps));
  }
  for (; r < r1; ++r) rms_norm_row(x + r * ldx, y + r * ldy, dim, w, eps);
}

void rms_norm(ThreadPool& pool, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_rows,
              int64_t dim, const float* w, float eps) {
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e, int) { rms_norm_rows(x, ldx, y, ldy, b, e, dim, w, eps); });
}

}  // namespace dg

#include "cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/tiling.h"
#include "quant/dequantize.h"

#include "cpu/x86_simd.h"

namespace dg {
namespace {

constexpr int64_t NR = kGemmNR;
constexpr int64_t KC = kGemmKC;
constexpr int64_t kMaxGroup = 24;  // panels packed per reduction block (768 KiB, in L2)

// Per-thread buffers, sized on a thread's first GEMM and grown only when a call needs more rows
// than any before it (pool threads live as long as the pool: in steady state nothing allocates).
struct PackScratch {
  std::vector<float> storage;
  float* panels = nullptr;     // [kMaxGroup][KC][NR] fp32 panels, 64-byte aligned
  float* rows = nullptr;       // [NR][KC] dequantized weight rows before the transpose
  std::vector<double> store64;
  double* panels64 = nullptr;  // [kMaxGroup64][KC][NR] fp64 copies of the panels
  std::vector<double> a64;     // [n_rows][KC] the activation block widened to fp64
  std::vector<double> c64;     // [n_rows][group * NR] fp64 accumulators of one output group
};
constexpr int64_t kMaxGroup64 = 4;
PackScratch& pack_scratch() {
  thread_local PackScratch s;
  if (s.storage.empty()) {
    s.storage.assign(static_cast<size_t>(kMaxGroup * KC * NR + NR * KC + 16), 0.0f);
    const uintptr_t base = reinterpret_cast<uintptr_t>(s.storage.data());
    s.panels = reinterpret_cast<float*>((base + 63) & ~static_cast<uintptr_t>(63));
    s.rows = s.panels + kMaxGroup * KC * NR;
    s.store64.assign(static_cast<size_t>(kMaxGroup64 * KC * NR + 8), 0.0);
    const uintptr_t base64 = reinterpret_cast<uintptr_t>(s.store64.data());
    s.panels64 = reinterpret_cast<double*>((base64 + 63) & ~static_cast<uintptr_t>(63));
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Micro-kernels: c[r, j] (+)= sum_k a[r, k] * b[k, j], r < mr, j < ncols; b is a packed panel
// [kc][NR]; one fp32 FMA chain per output, k in increasing order.

void ukr_scalar(int mr, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, int ncols,
                bool acc) {
  for (int r = 0; r < mr; ++r) {
    for (int j = 0; j < ncols; ++j) {
      float s = acc ? c[r * ldc + j] : 0.0f;
      for (int64_t k = 0; k < kc; ++k) s = std::fma(a[r * lda + k], b[k * NR + j], s);
      c[r * ldc + j] = s;
    }
  }
}

#ifdef DG_X86

template <int MR>
__attribute__((target("avx512f"))) void ukr512(const float* a, int64_t lda, const float* b, int64_t kc, float* c,
                                               int64_t ldc, int ncols, bool acc) {
  __mmask16 m0, m1;
  col_masks32(ncols, &m0, &m1);
  __m512 c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) {
    if (acc) {
      c0[r] = _mm512_maskz_loadu_ps(m0, c + r * ldc);
      c1[r] = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16);
    } else {
      c0[r] = _mm512_setzero_ps();
      c1[r] = _mm512_setzero_ps();
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * NR);
    const __m512 b1 = _mm512_load_ps(b + k * NR + 16);
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + k]);
      c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
  }
}

// 16 columns of the panel (b points at column 0 or 16; the panel row stride stays NR).
template <int MR>
__attribute__((target("avx2,fma"))) void ukr256(const float* a, int64_t lda, const float* b, int64_t kc, float* c,
                                                int64_t ldc, int ncols, bool acc) {
  alignas(32) float tmp[MR][16];
  __m256 c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) {
    if (acc) {
      if (ncols == 16) {
        c0[r] = _mm256_loadu_ps(c + r * ldc);
        c1[r] = _mm256_loadu_ps(c + r * ldc + 8);
      } else {
        for (int j = 0; j < 16; ++j) tmp[r][j] = j < ncols ? c[r * ldc + j] : 0.0f;
        c0[r] = _mm256_load_ps(tmp[r]);
        c1[r] = _mm256_load_ps(tmp[r] + 8);
      }
    } else {
      c0[r] = _mm256_setzero_ps();
      c1[r] = _mm256_setzero_ps();
    }
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b + k * NR);
    const __m256 b1 = _mm256_load_ps(b + k * NR + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    if (ncols == 16) {
      _mm256_storeu_ps(c + r * ldc, c0[r]);
      _mm256_storeu_ps(c + r * ldc + 8, c1[r]);
    } else {
      _mm256_store_ps(tmp[r], c0[r]);
      _mm256_store_ps(tmp[r] + 8, c1[r]);
      for (int j = 0; j < ncols; ++j) c[r * ldc + j] = tmp[r][j];
    }
  }
}

using Ukr = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int, bool);

constexpr int kMR512 = 12;
constexpr int kMR256 = 6;
const Ukr kUkr512[kMR512 + 1] = {nullptr,       ukr512<1>, ukr512<2>, ukr512<3>,  ukr512<4>,  ukr512<5>, ukr512<6>,
                                 ukr512<7>,     ukr512<8>, ukr512<9>, ukr512<10>, ukr512<11>, ukr512<12>};
const Ukr kUkr256[kMR256 + 1] = {nullptr, ukr256<1>, ukr256<2>, ukr256<3>, ukr256<4>, ukr256<5>, ukr256<6>};

// panel[k][o] = rows[o][k] for k < kc, o < NR (rows: [NR][KC]); 16x16 register transposes.
// (GCC 12 warns inside its own shuffle intrinsics, which start from _mm512_undefined: a false
// positive, silenced for this function only.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The float form of avx512_util.h's 16 x 16 transpose (the same bits).
__attribute__((target("avx512f"))) inline void transpose16(__m512* r) {
  transpose16x16_32(reinterpret_cast<__m512i*>(r));
}

__attribute__((target("avx512f"))) void transpose_pack512(const float* rows, int64_t kc, float* panel) {
  for (int64_t o0 = 0; o0 < NR; o0 += 16) {
    int64_t k0 = 0;
    for (; k0 + 16 <= kc; k0 += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows + (o0 + i) * KC + k0);
      transpose16(r);
      for (int i = 0; i < 16; ++i) _mm512_store_ps(panel + (k0 + i) * NR + o0, r[i]);
    }
    for (; k0 < kc; ++k0)
      for (int64_t o = 0; o < 16; ++o) panel[k0 * NR + o0 + o] = rows[(o0 + o) * KC + k0];
  }
}

// The same with 8 x 8 transposes in ymm registers.
__attribute__((target("avx2"))) void transpose_pack256(const float* rows, int64_t kc, float* panel) {
  for (int64_t o0 = 0; o0 < NR; o0 += 8) {
    int64_t k0 = 0;
    for (; k0 + 8 <= kc; k0 += 8) {
      __m256 r[8], t[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(rows + (o0 + i) * KC + k0);
      for (int i = 0; i < 8; i += 2) {  // pairs of rows interleaved
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {  // then quads: 4 rows x 2 columns per 128-bit lane
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
      }
      for (int i = 0; i < 4; ++i) {  // the two 128-bit halves: columns i and i + 4
        _mm256_store_ps(panel + (k0 + i) * NR + o0, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_store_ps(panel + (k0 + i + 4) * NR + o0, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
      }
    }
    for (; k0 < kc; ++k0)
      for (int64_t o = 0; o < 8; ++o) panel[k0 * NR + o0 + o] = rows[(o0 + o) * KC + k0];
  }
}

// Elements [k, k + 16) of a weight row widened to fp32, exactly as dequantize_row gives them
// (k a multiple of 16; for Q8_0 the 16 lie in one block: d * q in fp32, d widened exactly).
template <GGMLType T>
__attribute__((target("avx512f,f16c"))) inline __m512 load16(const uint8_t* row, int64_t k) {
  if constexpr (T == GGMLType::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(row) + k);
  } else if constexpr (T == GGMLType::F16) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
  } else if constexpr (T == GGMLType::BF16) {
    const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * k)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
  } else {  // Q8_0: 34-byte blocks {fp16 d, int8 q[32]}
    const uint8_t* blk = row + (k / 32) * 34;
    uint16_t dh;
    std::memcpy(&dh, blk, 2);
    const __m128i q8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + (k % 32)));
    const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q8));
    return _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(dh)), q);
  }
}

// Fused widen + transpose of W rows [c0, c0 + n), columns [k0, k0 + kc) (kc a multiple of 16).
template <GGMLType T>
__attribute__((target("avx512f,f16c"))) void pack_wt512_t(const WeightView& w, int64_t c0, int64_t n, int64_t k0,
                                                           int64_t kc, float* panel) {
  const uint8_t* rows[NR];
  for (int64_t o = 0; o < NR; ++o) rows[o] = o < n ? w.row(c0 + o) : nullptr;
  for (int64_t o0 = 0; o0 < NR; o0 += 16) {
    const int live = static_cast<int>(std::clamp<int64_t>(n - o0, 0, 16));
    for (int64_t k = 0; k < kc; k += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) r[i] = i < live ? load16<T>(rows[o0 + i], k0 + k) : _mm512_setzero_ps();
      transpose16(r);
      for (int i = 0; i < 16; ++i) _mm512_store_ps(panel + (k + i) * NR + o0, r[i]);
    }
  }
}

// Widen W rows [k0, k0 + kc), columns [c0, c0 + NR) into a panel (no transpose; c0 a multiple of 16
// and the columns inside the row).
template <GGMLType T>
__attribute__((target("avx512f,f16c"))) void pack_w512_t(const WeightView& w, int64_t c0, int64_t k0, int64_t kc,
                                                          float* panel) {
  for (int64_t k = 0; k < kc; ++k) {
    const uint8_t* row = w.row(k0 + k);
    _mm512_store_ps(panel + k * NR, load16<T>(row, c0));
    _mm512_store_ps(panel + k * NR + 16, load16<T>(row, c0 + 16));
  }
}

void pack_w512(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, float* panel) {
  switch (w.type) {
    case GGMLType::F32: pack_w512_t<GGMLType::F32>(w, c0, k0, kc, panel); return;
    case GGMLType::F16: pack_w512_t<GGMLType::F16>(w, c0, k0, kc, panel); return;
    case GGMLType::BF16: pack_w512_t<GGMLType::BF16>(w, c0, k0, kc, panel); return;
    case GGMLType::Q8_0: pack_w512_t<GGMLType::Q8_0>(w, c0, k0, kc, panel); return;
    default: return;  // callers check simd_widen
  }
}

void pack_wt512(const WeightView& w, int64_t c0, int64_t n, int64_t k0, int64_t kc, float* panel) {
  switch (w.type) {
    case GGMLType::F32: pack_wt512_t<GGMLType::F32>(w, c0, n, k0, kc, panel); return;
    case GGMLType::F16: pack_wt512_t<GGMLType::F16>(w, c0, n, k0, kc, panel); return;
    case GGMLType::BF16: pack_wt512_t<GGMLType::BF16>(w, c0, n, k0, kc, panel); return;
    case GGMLType::Q8_0: pack_wt512_t<GGMLType::Q8_0>(w, c0, n, k0, kc, panel); return;
    default: return;  // callers check simd_widen
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// fp64-accumulating kernels: c[r, j] += sum_k a[r, k] * b[k, j] with a, b, c in fp64 (a and b
// hold fp32 values, so each product is exact and each step rounds once, in fp64).
template <int MR>
__attribute__((target("avx512f"))) void ukr512d(const double* a, int64_t lda, const double* b, int64_t kc,
                                                double* c, int64_t ldc) {
  __m512d acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_loadu_pd(c + r * ldc + 8 * q);
  for (int64_t k = 0; k < kc; ++k) {
    const double* bk = b + k * NR;
    const __m512d b0 = _mm512_load_pd(bk), b1 = _mm512_load_pd(bk + 8);
    const __m512d b2 = _mm512_load_pd(bk + 16), b3 = _mm512_load_pd(bk + 24);
    for (int r = 0; r < MR; ++r) {
      const __m512d av = _mm512_set1_pd(a[r * lda + k]);
      acc[r][0] = _mm512_fmadd_pd(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_pd(av, b1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_pd(av, b2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_pd(av, b3, acc[r][3]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) _mm512_storeu_pd(c + r * ldc + 8 * q, acc[r][q]);
}

// 16 of the panel's 32 columns (b and c point at column 0 or 16).
template <int MR>
__attribute__((target("avx2,fma"))) void ukr256d(const double* a, int64_t lda, const double* b, int64_t kc,
                                                 double* c, int64_t ldc) {
  __m256d acc[MR][4];
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm256_loadu_pd(c + r * ldc + 4 * q);
  for (int64_t k = 0; k < kc; ++k) {
    const double* bk = b + k * NR;
    const __m256d b0 = _mm256_load_pd(bk), b1 = _mm256_load_pd(bk + 4);
    const __m256d b2 = _mm256_load_pd(bk + 8), b3 = _mm256_load_pd(bk + 12);
    for (int r = 0; r < MR; ++r) {
      const __m256d av = _mm256_broadcast_sd(a + r * lda + k);
      acc[r][0] = _mm256_fmadd_pd(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_pd(av, b1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_pd(av, b2, acc[r][2]);
      acc[r][3] = _mm256_fmadd_pd(av, b3, acc[r][3]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int q = 0; q < 4; ++q) _mm256_storeu_pd(c + r * ldc + 4 * q, acc[r][q]);
}

using Ukr64 = void (*)(const double*, int64_t, const double*, int64_t, double*, int64_t);
constexpr int kMR512d = 6;
constexpr int kMR256d = 3;
const Ukr64 kUkr512d[kMR512d + 1] = {nullptr, ukr512d<1>, ukr512d<2>, ukr512d<3>, ukr512d<4>, ukr512d<5>, ukr512d<6>};
const Ukr64 kUkr256d[kMR256d + 1] = {nullptr, ukr256d<1>, ukr256d<2>, ukr256d<3>};

#endif  // DG_X86

void transpose_pack(const float* rows, int64_t kc, float* panel) {
#ifdef DG_X86
  if (active_isa() >= Isa::kAVX512) {
    transpose_pack512(rows, kc, panel);
    return;
  }
  if (active_isa() >= Isa::kAVX2) {
    transpose_pack256(rows, kc, panel);
    return;
  }
#endif
  for (int64_t k = 0; k < kc; ++k)
    for (int64_t o = 0; o < NR; ++o) panel[k * NR + o] = rows[o * KC + k];
}

// Runs the fp32 micro-kernels of one packed panel over all rows.
void run_panel(Isa isa, const float* a, int64_t lda, int64_t n_rows, const float* panel, int64_t kc, float* c,
               int64_t ldc, int ncols, bool acc) {
#ifdef DG_X86
  if (isa >= Isa::kAVX512) {
    for (int64_t t = 0; t < n_rows;) {
      const int mr = tile_rows(n_rows - t, kMR512);
      kUkr512[mr](a + t * lda, lda, panel, kc, c + t * ldc, ldc, ncols, acc);
      t += mr;
    }
    return;
  }
  if (isa == Isa::kAVX2 || isa == Isa::kAVX2VNNI) {
    for (int half = 0; half < 2 && half * 16 < ncols; ++half) {
      const int nc = std::min(16, ncols - half * 16);
      for (int64_t t = 0; t < n_rows;) {
        const int mr = tile_rows(n_rows - t, kMR256);
        kUkr256[mr](a + t * lda, lda, panel + half * 16, kc, c + t * ldc + half * 16, ldc, nc, acc);
        t += mr;
      }
    }
    return;
  }
#endif
  (void)isa;
  for (int64_t t = 0; t < n_rows; t += 8) {
    const int mr = static_cast<int>(std::min<int64_t>(8, n_rows - t));
    ukr_scalar(mr, a + t * lda, lda, panel, kc, c + t * ldc, ldc, ncols, acc);
  }
}

// The same over fp64 operands and accumulators (c: [n_rows][ldc], all NR columns).
void run_panel64(Isa isa, const double* a, int64_t lda, int64_t n_rows, const double* panel, int64_t kc, double* c,
                 int64_t ldc) {
#ifdef DG_X86
  if (isa >= Isa::kAVX512) {
    for (int64_t t = 0; t < n_rows;) {
      const int mr = tile_rows(n_rows - t, kMR512d);
      kUkr512d[mr](a + t * lda, lda, panel, kc, c + t * ldc, ldc);
      t += mr;
    }
    return;
  }
  if (isa == Isa::kAVX2 || isa == Isa::kAVX2VNNI) {
    for (int half = 0; half < 2; ++half) {
      for (int64_t t = 0; t < n_rows;) {
        const int mr = tile_rows(n_rows - t, kMR256d);
        kUkr256d[mr](a + t * lda, lda, panel + half * 16, kc, c + t * ldc + half * 16, ldc);
        t += mr;
      }
    }
    return;
  }
#endif
  (void)isa;
  for (int64_t t = 0; t < n_rows; ++t)
    for (int64_t j = 0; j < NR; ++j) {
      double s = c[t * ldc + j];
      for (int64_t k = 0; k < kc; ++k) s = std::fma(a[t * lda + k], panel[k * NR + j], s);
      c[t * ldc + j] = s;
    }
}

// One reduction segment: activations a [n_rows, lda] over K steps (attention's P @ V sums the
// cached keys, then the fresh ones).
struct Segment {
  const float* a;
  int64_t lda;
  int64_t K;
};

// The blocked loop shared by both forms: outputs [o0, o1) in groups of `group` panels; per
// reduction block, pack the group's panels (pack(seg, c0, n, k0, kc, panel, rows)), then run
// every row tile over them. fp64 mode keeps the group's accumulators in fp64 across blocks and
// rounds once at the end.
template <class Pack>
void gemm_blocked(int64_t o0, int64_t o1, const Segment* segs, int n_seg, int64_t n_rows, float* y, int64_t ldy,
                  bool accumulate, int64_t group, const Pack& pack) {
  if (n_rows <= 0 || o1 <= o0) return;
  PackScratch& s = pack_scratch();
  const Isa isa = active_isa();
  const bool f64 = gemm_precision() == GemmPrecision::kF64Accumulate;
  if (f64) group = std::min(group, kMaxGroup64);
  const int64_t span = group * NR;
  if (f64 && s.c64.size() < static_cast<size_t>(n_rows * span)) s.c64.resize(static_cast<size_t>(n_rows * span));
  if (f64 && s.a64.size() < static_cast<size_t>(n_rows * KC)) s.a64.resize(static_cast<size_t>(n_rows * KC));
  for (int64_t g0 = o0; g0 < o1; g0 += span) {
    const int64_t g1 = std::min(o1, g0 + span);
    const int64_t n_pan = (g1 - g0 + NR - 1) / NR;
    double* c64 = s.c64.data();
    if (f64) {
      for (int64_t t = 0; t < n_rows; ++t) {
        double* cr = c64 + t * span;
        for (int64_t j = 0; j < span; ++j) cr[j] = accumulate && g0 + j < g1 ? y[t * ldy + g0 + j] : 0.0;
      }
    }
    bool first = true;
    for (int sg = 0; sg < n_seg; ++sg) {
      const Segment& seg = segs[sg];
      for (int64_t k0 = 0; k0 < seg.K; k0 += KC) {
        const int64_t kc = std::min(KC, seg.K - k0);
        for (int64_t p = 0; p < n_pan; ++p) {
          const int64_t c0 = g0 + p * NR;
          pack(sg, c0, std::min(NR, g1 - c0), k0, kc, s.panels + p * KC * NR, s.rows);
        }
        if (f64) {
          for (int64_t i = 0; i < n_pan * KC * NR; ++i) s.panels64[i] = s.panels[i];
          double* a64 = s.a64.data();
          for (int64_t t = 0; t < n_rows; ++t)
            for (int64_t k = 0; k < kc; ++k) a64[t * KC + k] = seg.a[t * seg.lda + k0 + k];
          for (int64_t p = 0; p < n_pan; ++p)
            run_panel64(isa, a64, KC, n_rows, s.panels64 + p * KC * NR, kc, c64 + p * NR, span);
        } else {
          const bool acc = accumulate || !first;
          for (int64_t p = 0; p < n_pan; ++p) {
            const int64_t c0 = g0 + p * NR;
            run_panel(isa, seg.a + k0, seg.lda, n_rows, s.panels + p * KC * NR, kc, y + c0, ldy,
                      static_cast<int>(std::min(NR, g1 - c0)), acc);
          }
        }
        first = false;
      }
    }
    if (f64) {
      for (int64_t t = 0; t < n_rows; ++t)
        for (int64_t j = g0; j < g1; ++j) y[t * ldy + j] = static_cast<float>(c64[t * span + j - g0]);
    } else if (first && !accumulate) {
      for (int64_t t = 0; t < n_rows; ++t) std::fill(y + t * ldy + g0, y + t * ldy + g1, 0.0f);  // K = 0
    }
  }
}

}  // namespace

namespace {
// The weight's second-level scale times each product (after the one rounding of the sum).
void apply_out_scale(float scale, int64_t o0, int64_t o1, int64_t n_rows, float* y, int64_t ldy, bool accumulate) {
  if (scale == 1.0f) return;
  if (accumulate) throw std::logic_error("gemm: accumulate with an output scale");
  for (int64_t t = 0; t < n_rows; ++t)
    for (int64_t o = o0; o < o1; ++o) y[t * ldy + o] *= scale;
}
}  // namespace

bool gemm_supported(GGMLType t) { return row_dequant_supported(t); }

bool gemm_w_supported(GGMLType t) { return row_dequant_supported(t) && NR % dequant_block_size(t) == 0; }

namespace {
// Types the fused AVX-512 widening loaders decode (load16); others go through dequantize_row.
bool simd_widen(GGMLType t) {
  return t == GGMLType::F32 || t == GGMLType::F16 || t == GGMLType::BF16 || t == GGMLType::Q8_0;
}
}  // namespace

void gemm_wt(const WeightView& w, int64_t o0, int64_t o1, const float* x, int64_t ldx, int64_t n_rows, float* y,
             int64_t ldy, bool accumulate) {
  // Panel (c0.., k0..): rows c0..c0+n of W, columns k0..k0+kc, transposed to [kc][NR].
  auto pack = [&w](int, int64_t c0, int64_t n, int64_t k0, int64_t kc, float* panel, float* rows) {
#ifdef DG_X86
    if (kc % 16 == 0 && simd_widen(w.type) && active_isa() >= Isa::kAVX512) {
      pack_wt512(w, c0, n, k0, kc, panel);
      return;
    }
#endif
    for (int64_t o = 0; o < n; ++o) dequantize_row(w.type, w.row(c0 + o), k0, kc, rows + o * KC);
    for (int64_t o = n; o < NR; ++o) std::fill(rows + o * KC, rows + o * KC + kc, 0.0f);
    transpose_pack(rows, kc, panel);
  };
  const Segment seg{x, ldx, w.n_in};
  gemm_blocked(o0, o1, &seg, 1, n_rows, y, ldy, accumulate, 4, pack);
  apply_out_scale(w.out_scale, o0, o1, n_rows, y, ldy, accumulate);
}

void gemm_w(const WeightView& w, int64_t j0, int64_t j1, const float* p, int64_t ldp, int64_t n_rows, float* y,
            int64_t ldy, bool accumulate) {
  gemm_w2(w, p, ldp, WeightView{}, nullptr, 0, j0, j1, n_rows, y, ldy, accumulate);
}

void gemm_w2(const WeightView& w1, const float* p1, int64_t ldp1, const WeightView& w2, const float* p2, int64_t ldp2,
             int64_t j0, int64_t j1, int64_t n_rows, float* y, int64_t ldy, bool accumulate) {
  // Panel (c0.., k0..): rows k0..k0+kc of W, columns c0..c0+n, already [kc][NR] after widening.
  const WeightView* ws[2] = {&w1, &w2};
  auto pack = [&ws](int sg, int64_t c0, int64_t n, int64_t k0, int64_t kc, float* panel, float*) {
    const WeightView& w = *ws[sg];
#ifdef DG_X86
    if (n == NR && c0 % 16 == 0 && simd_widen(w.type) && active_isa() >= Isa::kAVX512) {
      pack_w512(w, c0, k0, kc, panel);
      return;
    }
#endif
    for (int64_t k = 0; k < kc; ++k) {
      float* dst = panel + k * NR;
      dequantize_row(w.type, w.row(k0 + k), c0, n, dst);
      for (int64_t j = n; j < NR; ++j) dst[j] = 0.0f;
    }
  };
  const Segment segs[2] = {{p1, ldp1, w1.n_out}, {p2, ldp2, p2 ? w2.n_out : 0}};
  gemm_blocked(j0, j1, segs, p2 && w2.n_out > 0 ? 2 : 1, n_rows, y, ldy, accumulate, kMaxGroup, pack);
  if (p2 && w2.out_scale != w1.out_scale) throw std::logic_error("gemm_w2: the two segments' scales differ");
  apply_out_scale(w1.out_scale, j0, j1, n_rows, y, ldy, accumulate);
}

}  // namespace dg

#include "cpu/gemm_bf16.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "cpu/cpu_features.h"
#include "cpu/qpanel.h"
#include "cpu/tiling.h"
#include "cpu/widen.h"
#include "quant/dequantize.h"
#include "quant/scalars.h"

#include "cpu/x86_simd.h"

// GCC 12 warns inside its own masked-load intrinsics (they start from _mm512_undefined): a false
// positive in every SIMD kernel of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {

bool bf16_gemm_available() { return active_isa() >= Isa::kAVX512BF16; }

#ifdef DG_X86
namespace {

constexpr int64_t NR = 32;     // columns per panel
constexpr int64_t kSpan = 256;  // columns decoded together (a K-quant super-block)
constexpr int64_t kPanels = kSpan / NR;
constexpr int64_t KC = 512;     // W rows per chunk (256 pairs)
constexpr int kMR = 12;
constexpr int64_t kPrefetchRows = 16;  // W rows fetched ahead of the one being widened

#define DG_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,f16c")))

// Panels of one chunk: panel p, pair i, column j: dword (bf16 W[2i+1][j] << 16) | bf16 W[2i][j].
struct Store {
  alignas(64) uint32_t panel[kPanels][KC / 2][NR];
  alignas(64) float rows[2][kSpan];
};

DG_BF16_TARGET void pack_chunk(const WeightView& w, int64_t c0, int64_t ncol, int64_t k0, int64_t kc, Store& s) {
  const int64_t n_pan = (ncol + NR - 1) / NR;
  // A span reads a short piece of every W row (rows are far apart): fetch the rows a few pairs
  // ahead, or every piece waits on memory.
  const uint64_t first = dequant_row_bytes(w.type, c0 / 256 * 256), last = dequant_row_bytes(w.type, std::min<int64_t>(
                                                                          w.n_in, (c0 + ncol + 255) / 256 * 256));
  for (int64_t i = 0; i < (kc + 1) / 2; ++i) {
    for (int64_t r = k0 + 2 * i + kPrefetchRows; r < std::min(w.n_out, k0 + 2 * i + kPrefetchRows + 2); ++r)
      for (uint64_t b = first; b < last; b += 64) __builtin_prefetch(w.row(r) + b, 0, 3);
    for (int h = 0; h < 2; ++h) {
      const int64_t r = k0 + 2 * i + h;
      if (r < w.n_out) widen_row(w, r, c0, ncol, s.rows[h]);
      else std::fill(s.rows[h], s.rows[h] + ncol, 0.0f);
      std::fill(s.rows[h] + ncol, s.rows[h] + n_pan * NR, 0.0f);
    }
    for (int64_t p = 0; p < n_pan; ++p) {
      for (int64_t half = 0; half < NR; half += 16) {
        const int64_t j = p * NR + half;
        const __m256i a = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(s.rows[0] + j)));
        const __m256i b = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(s.rows[1] + j)));
        const __m512i d = _mm512_or_si512(_mm512_cvtepu16_epi32(a), _mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
        _mm512_store_si512(s.panel[p][i] + half, d);
      }
    }
  }
}

template <int MR>
DG_BF16_TARGET void ukr_bf16(const uint16_t* p, int64_t ldp, const uint32_t* panel, int64_t pairs, float* c,
                             int64_t ldc, int ncols, bool acc) {
  __mmask16 m0, m1;
  col_masks32(ncols, &m0, &m1);
  __m512 c0[MR], c1[MR];
  for (int r = 0; r < MR; ++r) {
    c0[r] = acc ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
    c1[r] = acc ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < pairs; ++i) {
    const __m512bh w0 = reinterpret_cast<__m512bh>(_mm512_load_si512(panel + i * NR));
    const __m512bh w1 = reinterpret_cast<__m512bh>(_mm512_load_si512(panel + i * NR + 16));
    for (int r = 0; r < MR; ++r) {
      uint32_t two;
      std::memcpy(&two, p + r * ldp + 2 * i, 4);
      const __m512bh a = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(two)));
      c0[r] = _mm512_dpbf16_ps(c0[r], w0, a);
      c1[r] = _mm512_dpbf16_ps(c1[r], w1, a);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
  }
}

using Ukr = void (*)(const uint16_t*, int64_t, const uint32_t*, int64_t, float*, int64_t, int, bool);
const Ukr kUkr[kMR + 1] = {nullptr,      ukr_bf16<1>, ukr_bf16<2>, ukr_bf16<3>,  ukr_bf16<4>,  ukr_bf16<5>, ukr_bf16<6>,
                           ukr_bf16<7>,  ukr_bf16<8>, ukr_bf16<9>, ukr_bf16<10>, ukr_bf16<11>, ukr_bf16<12>};

}  // namespace

void gemm_w_bf16(const WeightView& w, int64_t j0, int64_t j1, const uint16_t* p, int64_t ldp, int64_t n_rows,
                 float* y, int64_t ldy) {
  if (!bf16_gemm_available()) throw std::logic_error("gemm_w_bf16 without AVX512-BF16");
  if (j0 % NR != 0 || (j1 % NR != 0 && j1 != w.n_in) || ldp % 2 != 0)
    throw std::logic_error("gemm_w_bf16: misaligned columns");
  if (n_rows <= 0 || j1 <= j0) return;
  thread_local std::unique_ptr<Store> owned(new Store);  // 256 KiB of panels per thread
  Store* store = owned.get();
  // Spans end on multiples of 256 (a K-quant super-block is then decoded whole).
  for (int64_t g0 = j0, g1; g0 < j1; g0 = g1) {
    g1 = std::min(j1, (g0 / kSpan + 1) * kSpan);
    const int64_t ncol = g1 - g0;
    const int64_t n_pan = (ncol + NR - 1) / NR;
    for (int64_t k0 = 0; k0 < w.n_out; k0 += KC) {
      const int64_t kc = std::min(KC, w.n_out - k0);
      pack_chunk(w, g0, ncol, k0, kc, *store);
      // The last pair of an odd-length W reads p one past the row's end: only if ldp allows.
      const int64_t pairs = (kc + 1) / 2;
      if (kc % 2 != 0 && k0 + kc + 1 > ldp) throw std::logic_error("gemm_w_bf16: odd rows need ldp > n_out");
      for (int64_t t = 0; t < n_rows;) {
        const int mr = tile_rows(n_rows - t, kMR);
        for (int64_t pn = 0; pn < n_pan; ++pn) {
          const int nc = static_cast<int>(std::min(NR, ncol - pn * NR));
          kUkr[mr](p + t * ldp + k0, ldp, &store->panel[pn][0][0], pairs, y + t * ldy + g0 + pn * NR, ldy, nc, k0 > 0);
        }
        t += mr;
      }
    }
    if (w.out_scale != 1.0f)
      for (int64_t t = 0; t < n_rows; ++t)
        for (int64_t j = g0; j < g0 + ncol; ++j) y[t * ldy + j] *= w.out_scale;
  }
}

namespace {
DG_BF16_TARGET void to_bf16_avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i))));
  for (; i < n; ++i) dst[i] = quant::f32_to_bf16(src[i]);
}
}  // namespace

void to_bf16(const float* src, uint16_t* dst, int64_t n) {
  if (bf16_gemm_available()) return to_bf16_avx512(src, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = quant::f32_to_bf16(src[i]);
}

#else
void gemm_w_bf16(const WeightView&, int64_t, int64_t, const uint16_t*, int64_t, int64_t, float*, int64_t) {
  throw std::logic_error("gemm_w_bf16 without AVX512-BF16");
}
void to_bf16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = quant::f32_to_bf16(src[i]);
}
#endif

}  // namespace dg

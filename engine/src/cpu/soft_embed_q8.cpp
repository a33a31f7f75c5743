#include "cpu/soft_embed_q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "cpu/cpu_features.h"
#include "cpu/qgemm.h"
#include "cpu/qpanel.h"
#include "cpu/widen.h"
#include "quant/dequantize.h"

#include "cpu/x86_simd.h"

// GCC 12 warns inside its own masked intrinsics (they start from _mm512_undefined): a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

constexpr int64_t NR = kQNR;      // columns per panel
constexpr int64_t kSpan = 256;    // columns decoded together (a K-quant super-block)
constexpr int64_t kPanels = kSpan / NR;
constexpr int64_t KC = 512;       // W rows per chunk: 16 KiB of codes per panel
constexpr int64_t kBlock = 32;    // W rows per scale

// One chunk's panels (qpanel.h layout) and the widened rows of the block being requantized.
struct Store {
  alignas(64) int8_t c[kPanels][(KC / 4) * NR * 4];  // [KC/4][NR][4] per panel
  alignas(64) float S[kPanels][(KC / kBlock) * NR];
  alignas(64) int32_t C[kPanels][(KC / kBlock) * NR];
  alignas(64) float rows[kBlock][kSpan];            // [32 rows][span columns]
};

// Block b of the chunk from s.rows (columns [0, ncol), ncol a multiple of 32): scales, codes,
// C = -128 * (sum of each column's 32 codes). The definition, one column at a time.
void requantize_block_scalar(Store& s, int64_t b, int64_t ncol) {
  for (int64_t j = 0; j < ncol; ++j) {
    float amax = 0.0f;
    for (int i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(s.rows[i][j]));
    const float sc = amax / 127.0f, inv = sc != 0.0f ? 1.0f / sc : 0.0f;
    const int64_t pn = j / NR, o = j % NR;
    int32_t sum = 0;
    for (int i = 0; i < kBlock; ++i) {
      const int32_t q = static_cast<int32_t>(std::nearbyint(s.rows[i][j] * inv));
      const int64_t k = b * kBlock + i;
      s.c[pn][((k / 4) * NR + o) * 4 + k % 4] = static_cast<int8_t>(q);
      sum += q;
    }
    s.S[pn][b * NR + o] = sc;
    s.C[pn][b * NR + o] = -128 * sum;
  }
}

#ifdef DG_X86
// The same in lanes: 16 columns per register, rows 4 at a time into the VNNI dwords.
__attribute__((target("avx512f,avx512bw,avx512vl"))) void requantize_block_avx512(Store& s, int64_t b, int64_t ncol) {
  const __m512i lo8 = _mm512_set1_epi32(0xFF);
  for (int64_t j = 0; j < ncol; j += 16) {
    __m512 amax = _mm512_setzero_ps();
    for (int i = 0; i < kBlock; ++i) amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(&s.rows[i][j])));
    const __m512 sc = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
    const __mmask16 nz = _mm512_cmp_ps_mask(sc, _mm512_setzero_ps(), _CMP_NEQ_UQ);
    const __m512 inv = _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), sc);
    const int64_t pn = j / NR, o = j % NR;
    __m512i sum = _mm512_setzero_si512();
    for (int i = 0; i < kBlock; i += 4) {
      __m512i q[4];
      for (int u = 0; u < 4; ++u) {
        q[u] = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(&s.rows[i + u][j]), inv));  // nearest even
        sum = _mm512_add_epi32(sum, q[u]);
      }
      const __m512i d = _mm512_or_si512(
          _mm512_or_si512(_mm512_and_si512(q[0], lo8), _mm512_slli_epi32(_mm512_and_si512(q[1], lo8), 8)),
          _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(q[2], lo8), 16), _mm512_slli_epi32(q[3], 24)));
      const int64_t k = b * kBlock + i;
      _mm512_store_si512(s.c[pn] + ((k / 4) * NR + o) * 4, d);
    }
    _mm512_store_ps(s.S[pn] + b * NR + o, sc);
    _mm512_store_si512(s.C[pn] + b * NR + o, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-128)));
  }
}

// 8 columns per register.
__attribute__((target("avx2,fma"))) void requantize_block_avx2(Store& s, int64_t b, int64_t ncol) {
  const __m256i lo8 = _mm256_set1_epi32(0xFF);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t j = 0; j < ncol; j += 8) {
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < kBlock; ++i) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(&s.rows[i][j])));
    const __m256 sc = _mm256_div_ps(amax, _mm256_set1_ps(127.0f));
    const __m256 nz = _mm256_cmp_ps(sc, _mm256_setzero_ps(), _CMP_NEQ_UQ);
    const __m256 inv = _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), sc));
    const int64_t pn = j / NR, o = j % NR;
    __m256i sum = _mm256_setzero_si256();
    for (int i = 0; i < kBlock; i += 4) {
      __m256i q[4];
      for (int u = 0; u < 4; ++u) {
        q[u] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(&s.rows[i + u][j]), inv));  // nearest even
        sum = _mm256_add_epi32(sum, q[u]);
      }
      const __m256i d = _mm256_or_si256(
          _mm256_or_si256(_mm256_and_si256(q[0], lo8), _mm256_slli_epi32(_mm256_and_si256(q[1], lo8), 8)),
          _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(q[2], lo8), 16), _mm256_slli_epi32(q[3], 24)));
      const int64_t k = b * kBlock + i;
      _mm256_store_si256(reinterpret_cast<__m256i*>(s.c[pn] + ((k / 4) * NR + o) * 4), d);
    }
    _mm256_store_ps(s.S[pn] + b * NR + o, sc);
    _mm256_store_si256(reinterpret_cast<__m256i*>(s.C[pn] + b * NR + o), _mm256_mullo_epi32(sum, _mm256_set1_epi32(-128)));
  }
}
#endif

void requantize_block(Store& s, int64_t b, int64_t ncol) {
#ifdef DG_X86
  if (active_isa() >= Isa::kAVX512) return requantize_block_avx512(s, b, ncol);
  if (active_isa() >= Isa::kAVX2) return requantize_block_avx2(s, b, ncol);
#endif
  requantize_block_scalar(s, b, ncol);
}

}  // namespace

bool soft_embed_q8_applies(const WeightView& w) {
  return qgemm_supported(w.type) && w.n_out % kBlock == 0 && w.n_in % NR == 0 && !w.packed;
}

void soft_embed_q8(const WeightView& w, int64_t j0, int64_t j1, const QuantActs& p, float* y, int64_t ldy) {
  if (!soft_embed_q8_applies(w)) throw std::logic_error("soft_embed_q8: weight not supported");
  if (p.K != w.n_out || j0 % NR != 0 || (j1 % NR != 0 && j1 != w.n_in) || j1 > w.n_in)
    throw std::logic_error("soft_embed_q8: misaligned columns or activations");
  if (p.n_rows <= 0 || j1 <= j0) return;
  thread_local std::unique_ptr<Store> owned(new Store);  // ~210 KiB per thread
  Store& s = *owned;
  QFormat f;
  f.group = 32;
  f.zero = 0;
  f.has_min = false;
  // Spans end on multiples of 256 (a K-quant super-block is then decoded whole).
  for (int64_t g0 = j0, g1; g0 < j1; g0 = g1) {
    g1 = std::min(j1, (g0 / kSpan + 1) * kSpan);
    const int64_t ncol = g1 - g0, n_pan = ncol / NR;
    // A span reads a short piece of every W row (rows are far apart): the next block's pieces
    // are fetched while this one is widened, or each piece waits on memory.
    const uint64_t first = dequant_row_bytes(w.type, g0 / kSpan * kSpan);
    const uint64_t last = dequant_row_bytes(w.type, std::min<int64_t>(w.n_in, (g1 + kSpan - 1) / kSpan * kSpan));
    for (int64_t k0 = 0; k0 < w.n_out; k0 += KC) {
      const int64_t kc = std::min(KC, w.n_out - k0);
      for (int64_t b = 0; b < kc / kBlock; ++b) {
        const int64_t next = k0 + (b + 1) * kBlock;  // the first row of the next block (any chunk)
        for (int64_t r = next; r < std::min(next + kBlock, w.n_out); ++r)
          for (uint64_t o = first; o < last; o += 64) __builtin_prefetch(w.row(r) + o, 0, 3);
        for (int i = 0; i < kBlock; ++i) widen_row(w, k0 + b * kBlock + i, g0, ncol, s.rows[i]);
        requantize_block(s, b, ncol);
      }
      for (int64_t pn = 0; pn < n_pan; ++pn) {
        const QPanel panel{s.c[pn], s.S[pn], nullptr, s.C[pn]};
        qgemm_panel(f, panel, NR, p, k0, kc, y + g0 + pn * NR, ldy, k0 > 0);
      }
    }
    if (w.out_scale != 1.0f)
      for (int64_t t = 0; t < p.n_rows; ++t)
        for (int64_t j = g0; j < g1; ++j) y[t * ldy + j] *= w.out_scale;
  }
}

}  // namespace dg

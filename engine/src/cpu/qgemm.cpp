#include "cpu/qgemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "cpu/cpu_features.h"
#include "cpu/qgemm_direct.h"
#include "cpu/qgemm_steps_avx512.h"
#include "cpu/qpack.h"
#include "cpu/qpanel.h"
#include "cpu/tiling.h"

#include "cpu/x86_simd.h"

// GCC 12 warns inside its own masked-load intrinsics (they start from _mm512_undefined): a false
// positive in every SIMD kernel of this file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

constexpr int64_t NR = kQNR;
constexpr int64_t kPackedKC = 512;   // values per chunk of a packed panel, unpacked (a multiple of 256)
constexpr int64_t kDirectKC = 1024;  // the same, read in place (qgemm_direct.h)

// One micro-kernel call: rows [0, mr) of the activations against a decoded panel, values of one
// chunk (nblk blocks of 32), into c[0..mr)[0..ncols).
struct Tile {
  const uint8_t* a;     // activation codes q + 128 at (row 0, chunk start); row stride lda
  int64_t lda;
  const float* d;       // block scales at (row 0, first block of the chunk); row stride ldb
  const float* ds;      // d * block sums, like d
  int64_t ldb;
  const int8_t* w;      // panel codes [nblk * 8][NR][4]
  const float* S;       // panel scales [groups][NR]
  const float* M;       // panel offsets [nblk][NR]
  const int32_t* C;     // panel corrections [groups][NR]
  int64_t nblk;
  float* c;
  int64_t ldc;
  int ncols;
  bool acc;
};

// ---- scalar: the definition every SIMD path reproduces -----------------------------------------

void ukr_scalar(const Tile& t, int mr, int G, bool has_min) {
  for (int r = 0; r < mr; ++r) {
    for (int o = 0; o < t.ncols; ++o) {
      float acc = t.acc ? t.c[r * t.ldc + o] : 0.0f;
      for (int64_t b = 0; b < t.nblk; ++b) {
        const float db = t.d[r * t.ldb + b];
        for (int gi = 0; gi < 32 / G; ++gi) {
          const int64_t g = b * (32 / G) + gi;
          int32_t i = t.C[g * NR + o];
          const int64_t k0 = b * 32 + gi * G;
          for (int64_t k = k0; k < k0 + G; ++k)
            i += static_cast<int32_t>(t.a[r * t.lda + k]) * t.w[((k / 4) * NR + o) * 4 + k % 4];
          acc = std::fma(static_cast<float>(i), t.S[g * NR + o] * db, acc);
        }
        if (has_min) acc = std::fma(t.M[b * NR + o], t.ds[r * t.ldb + b], acc);
      }
      t.c[r * t.ldc + o] = acc;
    }
  }
}

#ifdef DG_X86

inline int32_t load_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// ---- AVX512-VNNI: MR rows x 32 outputs ---------------------------------------------------------

template <int MR, int G, bool MIN>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void ukr_vnni512(const Tile& t) {
  __mmask16 m0, m1;
  col_masks32(t.ncols, &m0, &m1);
  __m512 f0[MR], f1[MR];
  DG_UNROLL
  for (int r = 0; r < MR; ++r) {
    f0[r] = t.acc ? _mm512_maskz_loadu_ps(m0, t.c + r * t.ldc) : _mm512_setzero_ps();
    f1[r] = t.acc ? _mm512_maskz_loadu_ps(m1, t.c + r * t.ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t b = 0; b < t.nblk; ++b) {
    DG_UNROLL
    for (int gi = 0; gi < 32 / G; ++gi) {
      const int64_t g = b * (32 / G) + gi;
      __m512i i0[MR], i1[MR];
      const __m512i c0 = _mm512_load_si512(t.C + g * NR), c1 = _mm512_load_si512(t.C + g * NR + 16);
      DG_UNROLL
      for (int r = 0; r < MR; ++r) i0[r] = c0, i1[r] = c1;
      const int64_t k0 = b * 32 + gi * G;
      const int8_t* wb = t.w + (k0 / 4) * NR * 4;
      DG_UNROLL
      for (int j = 0; j < G / 4; ++j) {
        const __m512i w0 = _mm512_load_si512(wb + j * NR * 4);
        const __m512i w1 = _mm512_load_si512(wb + j * NR * 4 + 64);
        DG_UNROLL
        for (int r = 0; r < MR; ++r) {
          const __m512i av = _mm512_set1_epi32(load_i32(t.a + r * t.lda + k0 + 4 * j));
          i0[r] = _mm512_dpbusd_epi32(i0[r], av, w0);  // unsigned activations x signed codes
          i1[r] = _mm512_dpbusd_epi32(i1[r], av, w1);
        }
      }
      qstep_scale<MR>(f0, f1, i0, i1, t.S + g * NR, t.d + b, t.ldb);
    }
    if constexpr (MIN) qstep_min<MR>(f0, f1, t.M + b * NR, t.ds + b, t.ldb);
  }
  DG_UNROLL
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(t.c + r * t.ldc, m0, f0[r]);
    _mm512_mask_storeu_ps(t.c + r * t.ldc + 16, m1, f1[r]);
  }
}

// ---- AVX2: MR rows x 16 outputs (one half of the panel), with AVX-VNNI or vpmaddubsw ------------

__attribute__((target("avx2"))) inline __m256i load256(const int8_t* p) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
}
__attribute__((target("avx2,fma,avxvnni"))) inline __m256i dp4_vnni(__m256i acc, __m256i a, __m256i w) {
  return _mm256_dpbusd_avx_epi32(acc, a, w);
}

#define DG_AVX2_NAME ukr_avx2_plain
#define DG_AVX2_TARGET __attribute__((target("avx2,fma")))
#define DG_AVX2_VNNI 0
#include "cpu/qgemm_avx2.inc"
#undef DG_AVX2_NAME
#undef DG_AVX2_TARGET
#undef DG_AVX2_VNNI
#define DG_AVX2_NAME ukr_avx2_vnni
#define DG_AVX2_TARGET __attribute__((target("avx2,fma,avxvnni")))
#define DG_AVX2_VNNI 1
#include "cpu/qgemm_avx2.inc"
#undef DG_AVX2_NAME
#undef DG_AVX2_TARGET
#undef DG_AVX2_VNNI

// ---- dispatch tables ------------------------------------------------------------------------

constexpr int kMR512 = 6;
constexpr int kMR512Min = 4;
constexpr int kMR256 = 2;
using Ukr512 = void (*)(const Tile&);
using Ukr256 = void (*)(const Tile&, int);

template <int G, bool MIN>
constexpr Ukr512 k512[kMR512 + 1] = {nullptr,
                                     ukr_vnni512<1, G, MIN>,
                                     ukr_vnni512<2, G, MIN>,
                                     ukr_vnni512<3, G, MIN>,
                                     ukr_vnni512<4, G, MIN>,
                                     ukr_vnni512<5, G, MIN>,
                                     ukr_vnni512<6, G, MIN>};
template <int G, bool MIN, bool VNNI, int P>
constexpr Ukr256 k256[kMR256 + 1] = {
    nullptr, VNNI ? ukr_avx2_vnni<1, G, MIN, 0> : ukr_avx2_plain<1, G, MIN, P>,
    VNNI ? ukr_avx2_vnni<2, G, MIN, 0> : ukr_avx2_plain<2, G, MIN, P>};

Ukr512 pick512(int mr, int G, bool has_min) {
  if (G == 16) return has_min ? k512<16, true>[mr] : k512<16, false>[mr];
  return has_min ? k512<32, true>[mr] : k512<32, false>[mr];
}
template <int P>
Ukr256 pick256_plain(int mr, int G, bool has_min) {
  if (G == 16) return has_min ? k256<16, true, false, P>[mr] : k256<16, false, false, P>[mr];
  return has_min ? k256<32, true, false, P>[mr] : k256<32, false, false, P>[mr];
}

Ukr256 pick256(int mr, const QFormat& f, bool vnni) {
  if (vnni) {
    if (f.group == 16) return f.has_min ? k256<16, true, true, 0>[mr] : k256<16, false, true, 0>[mr];
    return f.has_min ? k256<32, true, true, 0>[mr] : k256<32, false, true, 0>[mr];
  }
  // How many steps' vpmaddubsw products an int16 lane can sum exactly (qgemm_avx2.inc).
  if (8 * 255 * f.code_max <= 32767) return pick256_plain<4>(mr, f.group, f.has_min);
  if (4 * 255 * f.code_max <= 32767) return pick256_plain<2>(mr, f.group, f.has_min);
  return pick256_plain<0>(mr, f.group, f.has_min);
}

#endif  // DG_X86

// Per-thread decoded panel (64-byte aligned; the code area has room for a 64-value overrun of
// the transposes).
struct PanelStore {
  alignas(64) int8_t c[(kQKC / 4 + 16) * NR * 4];
  alignas(64) float S[(kQKC / 16) * NR];
  alignas(64) float M[(kQKC / 32) * NR];
  alignas(64) int32_t C[(kQKC / 16) * NR];
};

// The first row tile of values [k0, k0 + kc) of a against panel p, into y[.][0, ncols).
Tile panel_tile(const QuantActs& a, int64_t k0, int64_t kc, const QPanel& p, float* y, int64_t ldy, int64_t ncols,
                bool acc) {
  Tile t{};
  t.a = a.q + k0;
  t.lda = a.ldq;
  t.d = a.d + k0 / 32;
  t.ds = a.ds + k0 / 32;
  t.ldb = a.ldb;
  t.w = p.c;
  t.S = p.S;
  t.M = p.M;
  t.C = p.C;
  t.nblk = kc / 32;
  t.c = y;
  t.ldc = ldy;
  t.ncols = static_cast<int>(ncols);
  t.acc = acc;
  return t;
}

// pf / pf_lines: the next chunk of a packed matrix (TilePrefetch).
void run_rows(Isa isa, const QFormat& f, Tile t, int64_t n_rows, const uint8_t* pf, int64_t pf_lines) {
#ifdef DG_X86
  const int mr512 = f.has_min ? kMR512Min : kMR512;
  TilePrefetch fetch(pf, pf_lines, (n_rows + mr512 - 1) / mr512);
#else
  (void)pf, (void)pf_lines;
#endif
  for (int64_t r0 = 0; r0 < n_rows;) {
#ifdef DG_X86
    if (isa >= Isa::kAVX512) {
      fetch.before_tile();
      // Formats with a min hold two more registers per row tile (M): one row fewer.
      const int mr = tile_rows(n_rows - r0, mr512);
      pick512(mr, f.group, f.has_min)(t);
      r0 += mr;
      t.a += mr * t.lda, t.d += mr * t.ldb, t.ds += mr * t.ldb, t.c += mr * t.ldc;
      continue;
    }
    if (isa == Isa::kAVX2 || isa == Isa::kAVX2VNNI) {
      const int mr = tile_rows(n_rows - r0, kMR256);
      const Ukr256 k = pick256(mr, f, isa == Isa::kAVX2VNNI);
      k(t, 0);
      if (t.ncols > 16) k(t, 1);
      r0 += mr;
      t.a += mr * t.lda, t.d += mr * t.ldb, t.ds += mr * t.ldb, t.c += mr * t.ldc;
      continue;
    }
#endif
    (void)isa;
    const int mr = static_cast<int>(std::min<int64_t>(4, n_rows - r0));
    ukr_scalar(t, mr, f.group, f.has_min);
    r0 += mr;
    t.a += mr * t.lda, t.d += mr * t.ldb, t.ds += mr * t.ldb, t.c += mr * t.ldc;
  }
}

}  // namespace

bool qgemm_supported(GGMLType t) { return qformat_supported(t); }

void qgemm(const WeightView& w, int64_t o0, int64_t o1, const QuantActs& a, float* y, int64_t ldy, bool accumulate) {
  if (a.K != w.n_in) throw std::logic_error("qgemm: activation width does not match the weight");
  if (w.packed && (o0 % NR != 0 || (o1 - o0) % NR != 0)) throw std::logic_error("qgemm: packed rows split inside a panel");
  if (accumulate && w.out_scale != 1.0f) throw std::logic_error("qgemm: accumulate with an output scale");
  if (a.n_rows <= 0 || o1 <= o0) return;
  thread_local PanelStore store;
  const QPanel panel{store.c, store.S, store.M, store.C};
  const QFormat f = qformat(w.type);
  const Isa isa = active_isa();
  const bool direct = qgemm_direct_applies(w);  // packed codes read in place
  for (int64_t c0 = o0; c0 < o1; c0 += NR) {
    const int64_t n = std::min(NR, o1 - c0);
    // Packed panels go in chunks small enough that codes and activations stay in L1.
    const int64_t kc_max = direct ? kDirectKC : w.packed ? kPackedKC : kQKC;
    for (int64_t k0 = 0; k0 < w.n_in; k0 += kc_max) {
      const int64_t kc = std::min(kc_max, w.n_in - k0);
      // A packed matrix is one stream, chunk after chunk: fetch the next chunk's bytes.
      const uint8_t* pf = nullptr;
      int64_t pf_lines = 0;
      if (w.packed && (c0 + NR < o1 || k0 + kc < w.n_in)) {
        const uint64_t here = static_cast<uint64_t>(k0 / f.block) * f.block_bytes * NR;
        const uint64_t span = static_cast<uint64_t>(kc / f.block) * f.block_bytes * NR;
        pf = w.row(c0) + here + span;
        // (the next chunk may be shorter: never past the rows this call reads)
        const uint64_t left = static_cast<uint64_t>(w.row(o1) - pf);
        pf_lines = static_cast<int64_t>(std::min(span, left) / 64);
      }
      if (direct) {
        unpack_qscales(w, c0, k0, kc, panel);
        qgemm_direct_chunk(w, c0, k0, kc, a, panel, y, ldy, accumulate || k0 > 0, pf, pf_lines);
        continue;
      }
      if (w.packed) unpack_qpanel(w, c0, k0, kc, panel);
      else decode_qpanel(w, c0, n, k0, kc, panel);
      run_rows(isa, f, panel_tile(a, k0, kc, panel, y + c0, ldy, n, accumulate || k0 > 0), a.n_rows, pf, pf_lines);
    }
    if (w.out_scale != 1.0f) {
      for (int64_t r = 0; r < a.n_rows; ++r)
        for (int64_t o = c0; o < c0 + n; ++o) y[r * ldy + o] *= w.out_scale;
    }
  }
}

void qgemm_panel(const QFormat& f, const QPanel& p, int64_t ncols, const QuantActs& a, int64_t k0, int64_t kc, float* y,
                 int64_t ldy, bool accumulate) {
  if (k0 % 32 != 0 || kc % 32 != 0 || kc > kQKC || k0 + kc > a.K || ncols > NR || ncols <= 0)
    throw std::logic_error("qgemm_panel: chunk outside the activations or the panel");
  if (a.n_rows <= 0) return;
  run_rows(active_isa(), f, panel_tile(a, k0, kc, p, y, ldy, ncols, accumulate), a.n_rows, nullptr, 0);
}

}  // namespace dg

#include "cpu/qgemm_direct.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "cpu/cpu_features.h"
#include "cpu/qgemm_steps_avx512.h"
#include "cpu/qpack.h"
#include "cpu/tiling.h"

#include "cpu/x86_simd.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

enum Fmt { kQ4_0, kQ5_0, kQ4_K };
constexpr int kMaxBlocks = 32;  // 32-value blocks per chunk (kc <= 1024)

struct DTile {
  const int8_t* a;        // signed activation codes at (row 0, chunk start); row stride lda
  int64_t lda;
  const int32_t* qsum;    // block sums of the codes at (row 0, first block); row stride ldb
  const float* d;         // block scales, like qsum
  const float* ds;        // d * block sums, like qsum
  int64_t ldb;
  const uint8_t* wc[kMaxBlocks];  // block b's codes: nib[8][16][4]
  const uint8_t* wh[kMaxBlocks];  // Q5_0: block b's fifth bits [8][2] u64
  const float* S;         // [nblk][32]
  const float* M;         // [nblk][32] (Q4_K)
  int64_t nblk;
  float* c;
  int64_t ldc;
  bool acc;
};

#ifdef DG_X86
inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t load_u64(const void* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// H16 (the 4-bit formats): the high nibbles stay where they are, codes 16 u, so the second
// half's integers are 16 i and its scales S / 16 (hi16_scales): exact, one operation fewer per
// 4-value step (on this kernel's ports, the ones vpdpbusd uses).
template <int MR, Fmt F>
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) void ukr_direct(const DTile& t) {
  constexpr bool H16 = F != kQ5_0;
  constexpr int Z = F == kQ4_0 ? 8 : F == kQ5_0 ? 16 : 0;
  constexpr int kShiftZ = F == kQ4_0 ? 3 : 4;  // Z = 1 << kShiftZ (Z > 0)
  __m512 f0[MR], f1[MR];
  DG_UNROLL
  for (int r = 0; r < MR; ++r) {
    f0[r] = t.acc ? _mm512_loadu_ps(t.c + r * t.ldc) : _mm512_setzero_ps();
    f1[r] = t.acc ? _mm512_loadu_ps(t.c + r * t.ldc + 16) : _mm512_setzero_ps();
  }
  const __m512i m4 = _mm512_set1_epi8(15), sixteen = _mm512_set1_epi8(16);
  for (int64_t b = 0; b < t.nblk; ++b) {
    __m512i i0[MR], i1[MR];
    DG_UNROLL
    for (int r = 0; r < MR; ++r) {
      // - Z * (sum of the block's codes): what the weights' offset adds to the products
      const __m512i z = Z ? _mm512_set1_epi32(-(t.qsum[r * t.ldb + b] * (1 << kShiftZ))) : _mm512_setzero_si512();
      i0[r] = z, i1[r] = H16 && Z ? _mm512_slli_epi32(z, 4) : z;
    }
    const uint8_t* wc = t.wc[b];
    DG_UNROLL
    for (int j = 0; j < 8; ++j) {
      const __m512i v = _mm512_loadu_si512(wc + j * 64);
      __m512i w0 = _mm512_and_si512(v, m4);
      __m512i w1 = H16 ? _mm512_andnot_si512(m4, v) : _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
      if constexpr (F == kQ5_0) {
        w0 = _mm512_mask_add_epi8(w0, _cvtu64_mask64(load_u64(t.wh[b] + 16 * j)), w0, sixteen);
        w1 = _mm512_mask_add_epi8(w1, _cvtu64_mask64(load_u64(t.wh[b] + 16 * j + 8)), w1, sixteen);
      }
      DG_UNROLL
      for (int r = 0; r < MR; ++r) {
        const __m512i av = _mm512_set1_epi32(load_i32(t.a + r * t.lda + b * 32 + 4 * j));
        i0[r] = _mm512_dpbusd_epi32(i0[r], w0, av);  // unsigned weight codes x signed activations
        i1[r] = _mm512_dpbusd_epi32(i1[r], w1, av);
      }
    }
    qstep_scale<MR>(f0, f1, i0, i1, t.S + b * 32, t.d + b, t.ldb);
    if constexpr (F == kQ4_K) qstep_min<MR>(f0, f1, t.M + b * 32, t.ds + b, t.ldb);
  }
  DG_UNROLL
  for (int r = 0; r < MR; ++r) {
    _mm512_storeu_ps(t.c + r * t.ldc, f0[r]);
    _mm512_storeu_ps(t.c + r * t.ldc + 16, f1[r]);
  }
}

// The scales of outputs 16..31 divided by 16, for H16 above. A power of two: each product
// S / 16 * d is (S * d) / 16 and 16 i times it is i times S * d, so the sums round as the
// staged kernels' do (unless S * d is within a factor 16 of the subnormal range, below 2^-122).
__attribute__((target("avx512f"))) void hi16_scales(float* S, int64_t nblk) {
  const __m512 sixteenth = _mm512_set1_ps(0.0625f);
  for (int64_t b = 0; b < nblk; ++b)
    _mm512_store_ps(S + b * 32 + 16, _mm512_mul_ps(_mm512_load_ps(S + b * 32 + 16), sixteenth));
}

constexpr int kMR = 6;     // 12 integer + 12 float accumulators
constexpr int kMRMin = 4;  // Q4_K holds its offsets M too
using Ukr = void (*)(const DTile&);
template <Fmt F>
constexpr Ukr kUkr[kMR + 1] = {nullptr,          ukr_direct<1, F>, ukr_direct<2, F>, ukr_direct<3, F>,
                               ukr_direct<4, F>, ukr_direct<5, F>, ukr_direct<6, F>};

// The row tiles of one chunk (t advances over them), the next chunk fetched meanwhile
// (TilePrefetch).
template <Fmt F>
void run_tiles(DTile& t, int64_t n_rows, const uint8_t* pf, int64_t pf_lines) {
  constexpr int mr_max = F == kQ4_K ? kMRMin : kMR;
  TilePrefetch fetch(pf, pf_lines, (n_rows + mr_max - 1) / mr_max);
  for (int64_t r0 = 0; r0 < n_rows;) {
    fetch.before_tile();
    const int mr = tile_rows(n_rows - r0, mr_max);
    kUkr<F>[mr](t);
    r0 += mr;
    t.a += mr * t.lda, t.qsum += mr * t.ldb, t.d += mr * t.ldb, t.ds += mr * t.ldb, t.c += mr * t.ldc;
  }
}
#endif  // DG_X86

bool direct_format(GGMLType t, Fmt* f) {
  switch (t) {
    case GGMLType::Q4_0: *f = kQ4_0; return true;
    case GGMLType::Q5_0: *f = kQ5_0; return true;
    case GGMLType::Q4_K: *f = kQ4_K; return true;
    default: return false;
  }
}

}  // namespace

bool qgemm_direct_applies(const WeightView& w) {
  Fmt f;
#ifdef DG_X86
  return w.packed && direct_format(w.type, &f) && active_isa() >= Isa::kAVX512 &&
         (f != kQ5_0 || q5_0_direct());
#else
  (void)w, (void)f;
  return false;
#endif
}

void qgemm_direct_chunk(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QuantActs& a, const QPanel& p,
                        float* y, int64_t ldy, bool acc, const uint8_t* pf, int64_t pf_lines) {
  Fmt f;
  if (!qgemm_direct_applies(w) || !direct_format(w.type, &f) || kc > kMaxBlocks * 32 || kc % 32 != 0 || !a.qs)
    throw std::logic_error("qgemm_direct_chunk: not a packed chunk these kernels read, or activations without signed codes");
#ifdef DG_X86
  const QPackLayout L = qpack_layout(w.type);
  const uint64_t chunk_bytes = static_cast<uint64_t>(kQNR) * L.block_bytes;
  const uint8_t* panel = w.row(c0);
  DTile t;  // (not value-initialized: every field is set below, the block pointers up to nblk)
  t.nblk = kc / 32;
  // Block pointers walk the chunks without dividing per block (this runs once per panel chunk).
  const uint8_t* chunk = panel + static_cast<uint64_t>(k0 / L.block) * chunk_bytes;
  int64_t in_chunk = k0 % L.block;  // values into the chunk
  for (int64_t b = 0; b < t.nblk; ++b) {
    t.wc[b] = chunk + L.codes + (in_chunk / 4) * 64;  // 64 bytes per 4-value step of 32 outputs
    t.wh[b] = L.hi ? chunk + L.hi + (in_chunk / 4) * 16 : nullptr;
    in_chunk += 32;
    if (in_chunk == L.block) in_chunk = 0, chunk += chunk_bytes;
  }
  t.a = a.qs + k0;
  t.lda = a.ldq;
  t.qsum = a.qsum + k0 / 32;
  t.d = a.d + k0 / 32;
  t.ds = a.ds + k0 / 32;
  t.ldb = a.ldb;
  t.S = p.S;
  t.M = p.M;
  t.c = y + c0;
  t.ldc = ldy;
  t.acc = acc;
  // The chunk is in L2 (fetched during the previous one): into L1 before the first row tile
  // reads it (measured on the experts: a fifth faster than leaving it to the first tile's loads).
  const uint8_t* first = panel + static_cast<uint64_t>(k0 / L.block) * chunk_bytes;
  const uint64_t span = static_cast<uint64_t>((kc + L.block - 1) / L.block) * chunk_bytes;
  for (uint64_t o = 0; o < span; o += 64) _mm_prefetch(reinterpret_cast<const char*>(first + o), _MM_HINT_T0);
  if (f != kQ5_0) hi16_scales(p.S, t.nblk);
  switch (f) {
    case kQ4_0: run_tiles<kQ4_0>(t, a.n_rows, pf, pf_lines); break;
    case kQ5_0: run_tiles<kQ5_0>(t, a.n_rows, pf, pf_lines); break;
    case kQ4_K: run_tiles<kQ4_K>(t, a.n_rows, pf, pf_lines); break;
  }
#else
  (void)c0, (void)k0, (void)a, (void)p, (void)y, (void)ldy, (void)acc, (void)pf, (void)pf_lines;
#endif
}

}  // namespace dg

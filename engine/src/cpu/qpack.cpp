#include "cpu/qpack.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/cpu_features.h"
#include "quant/k_scales.h"
#include "quant/scalars.h"

#include "cpu/x86_simd.h"
#ifdef DG_X86
#include "cpu/block_loaders_avx512.h"
#endif

// GCC 12 warns inside its own masked intrinsics (they start from _mm512_undefined): a false
// positive, as in qgemm.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

using namespace quant;

using Layout = QPackLayout;

Layout layout(GGMLType t) {
  switch (t) {
    case GGMLType::Q8_0: return {32, 34, 2, 0, 64, false, 128};
    case GGMLType::Q4_0: return {32, 18, 2, 0, 64, true, 8};
    case GGMLType::Q5_0: return {32, 22, 2, 64, 192, true, 16};
    default: return {256, 144, 0, 0, 512, true, 0};  // Q4_K
  }
}

// Q4_K's chunk head (512 bytes, as many as the 32 blocks' d, dmin and scales): the scales laid out
// for lanes,  d[32] fp16 | dmin[32] fp16 | lo[16][16] | hi[16] u64.  Value j of output o (j < 8:
// sc[j], j >= 8: m[j - 8]; 6 bits): its low 4 bits in byte lo[j][o % 16] (the low nibble for
// o < 16, the high one for o >= 16), its high 2 bits at bit 2o of hi[j].
constexpr int kK4D = 0, kK4Dmin = 64, kK4Lo = 128, kK4Hi = 384, kK4Head = 512;

// Output o's part of a zeroed head, from its original block (d, dmin, 12 scale bytes).
void put_k4_head(uint8_t* head, int o, const uint8_t* blk) {
  std::memcpy(head + kK4D + 2 * o, blk, 2);
  std::memcpy(head + kK4Dmin + 2 * o, blk + 2, 2);
  uint8_t v[16];
  unpack_scales(blk + 4, v, v + 8);
  for (int j = 0; j < 16; ++j) {
    head[kK4Lo + 16 * j + o % 16] |= static_cast<uint8_t>((v[j] & 15) << (o < 16 ? 0 : 4));
    uint64_t w;
    std::memcpy(&w, head + kK4Hi + 8 * j, 8);
    w |= static_cast<uint64_t>(v[j] >> 4) << (2 * o);
    std::memcpy(head + kK4Hi + 8 * j, &w, 8);
  }
}

// Value j (sc[j] for j < 8, m[j - 8] after) of output o, from a head.
uint8_t k4_value(const uint8_t* head, int o, int j) {
  uint64_t w;
  std::memcpy(&w, head + kK4Hi + 8 * j, 8);
  return static_cast<uint8_t>(((head[kK4Lo + 16 * j + o % 16] >> (o < 16 ? 0 : 4)) & 15) | ((w >> (2 * o)) & 3) << 4);
}

// Output o's original d, dmin and 12 scale bytes (blk[0..16)).
void get_k4_head(const uint8_t* head, int o, uint8_t* blk) {
  std::memcpy(blk, head + kK4D + 2 * o, 2);
  std::memcpy(blk + 2, head + kK4Dmin + 2 * o, 2);
  uint8_t v[16];
  for (int j = 0; j < 16; ++j) v[j] = k4_value(head, o, j);
  pack_scales(v, v + 8, blk + 4);
}

// The head of a chunk from its 32 original blocks.
void put_heads(GGMLType t, const Layout& L, uint8_t* chunk, const uint8_t* const* blk) {
  if (t == GGMLType::Q4_K) {
    std::memset(chunk, 0, kK4Head);
    for (int o = 0; o < kQNR; ++o) put_k4_head(chunk, o, blk[o]);
    return;
  }
  for (int o = 0; o < kQNR; ++o) std::memcpy(chunk + L.head * o, blk[o], static_cast<size_t>(L.head));
}

// Byte and nibble shift of code (o, kk) in a chunk's nibbles.
inline int nib_byte(int o, int kk) { return (kk / 4) * 64 + (o % 16) * 4 + kk % 4; }
inline int nib_shift(int o) { return o < 16 ? 0 : 4; }
// Bit of Q5_0's fifth bit of code (o, kk): u64 word (kk / 4) * 2 + o / 16, bit 4 (o % 16) + kk % 4.
inline int hi_word(int o, int kk) { return (kk / 4) * 2 + o / 16; }
inline int hi_bit(int o, int kk) { return 4 * (o % 16) + kk % 4; }

// The unsigned code u (w = S (u - Z) + M) of output o, value kk of a nibble chunk.
inline int nibble_code(const Layout& L, const uint8_t* chunk, int o, int kk) {
  int u = (chunk[L.codes + nib_byte(o, kk)] >> nib_shift(o)) & 15;
  if (L.hi) {
    uint64_t word;
    std::memcpy(&word, chunk + L.hi + 8 * hi_word(o, kk), 8);
    u |= static_cast<int>((word >> hi_bit(o, kk)) & 1u) << 4;
  }
  return u;
}

// Q8_0 codes: [8][32][4], i.e. byte (kk / 4) * 128 + o * 4 + kk % 4.
inline int q8_byte(int o, int kk) { return (kk / 4) * 128 + o * 4 + kk % 4; }

// The unsigned code of output o, value kk (Q8_0 uses its own byte order).
inline int code_at(const Layout& L, const uint8_t* chunk, int o, int kk) {
  if (!L.nibbles) return static_cast<uint8_t>(chunk[L.codes + q8_byte(o, kk)] ^ 0x80);
  return nibble_code(L, chunk, o, kk);
}

// ---- codes -> original blocks ------------------------------------------------------------------

// Writes code kk into an original block whose code bytes start zeroed.
void put_block_code(GGMLType t, uint8_t* blk, int kk, int u) {
  switch (t) {
    case GGMLType::Q8_0: blk[2 + kk] = static_cast<uint8_t>(u ^ 0x80); return;
    case GGMLType::Q4_0: blk[2 + kk % 16] |= static_cast<uint8_t>((u & 15) << (kk < 16 ? 0 : 4)); return;
    case GGMLType::Q5_0: {
      blk[6 + kk % 16] |= static_cast<uint8_t>((u & 15) << (kk < 16 ? 0 : 4));
      if (u & 16) blk[2 + kk / 8] |= static_cast<uint8_t>(1u << (kk % 8));  // little-endian qh bit kk
      return;
    }
    default: {
      const int j = kk / 32, l = kk % 32;
      blk[16 + 32 * (j / 2) + l] |= static_cast<uint8_t>((u & 15) << (4 * (j & 1)));
      return;
    }
  }
}

// ---- kernel panels from packed chunks ---------------------------------------------------------

// S (and M) of one chunk for its 32 outputs; g0 = the chunk's first group in the panel.
void chunk_scales_scalar(GGMLType t, const Layout& L, const uint8_t* chunk, int64_t g0, const QPanel& p) {
  for (int o = 0; o < kQNR; ++o) {
    if (t != GGMLType::Q4_K) {
      uint16_t d16;
      std::memcpy(&d16, chunk + L.head * o, 2);
      p.S[g0 * kQNR + o] = half_to_f32(d16);
      continue;
    }
    uint16_t d16, dm16;
    std::memcpy(&d16, chunk + kK4D + 2 * o, 2);
    std::memcpy(&dm16, chunk + kK4Dmin + 2 * o, 2);
    const float d = half_to_f32(d16), dmin = half_to_f32(dm16);
    for (int j = 0; j < 8; ++j) {
      p.S[(g0 + j) * kQNR + o] = d * static_cast<float>(k4_value(chunk, o, j));
      p.M[(g0 + j) * kQNR + o] = -(dmin * static_cast<float>(k4_value(chunk, o, j + 8)));
    }
  }
}

void unpack_scalar(const WeightView& w, const Layout& L, const uint8_t* panel, int64_t k0, int64_t kc, const QPanel& p,
                   bool codes) {
  const uint64_t chunk_bytes = static_cast<uint64_t>(kQNR) * L.block_bytes;
  for (int64_t k = k0; k < k0 + kc; k += L.block) {
    const uint8_t* chunk = panel + static_cast<uint64_t>(k / L.block) * chunk_bytes;
    const int64_t kl = k - k0;  // value offset in the panel
    chunk_scales_scalar(w.type, L, chunk, kl / 32, p);
    if (!codes) continue;
    for (int kk = 0; kk < L.block; ++kk)
      for (int o = 0; o < kQNR; ++o)
        p.c[(((kl + kk) / 4) * kQNR + o) * 4 + (kl + kk) % 4] = static_cast<int8_t>(code_at(L, chunk, o, kk) - L.zero);
  }
  if (!codes) return;
  for (int64_t g = 0; g < kc / 32; ++g) {
    for (int o = 0; o < kQNR; ++o) {
      int32_t sum = 0;
      for (int64_t k = 32 * g; k < 32 * (g + 1); ++k) sum += p.c[((k / 4) * kQNR + o) * 4 + k % 4];
      p.C[g * kQNR + o] = -128 * sum;
    }
  }
}

#ifdef DG_X86
#define DG_PACK_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))

// One group's code sums while its steps are stored (outputs 0..15 and 16..31), for C.
struct GroupSums {
  __m512i s0, s1;
};

DG_PACK_TARGET inline void store_step(const QPanel& p, int64_t row, __m512i w0, __m512i w1, GroupSums& g) {
  const __m512i ones = _mm512_set1_epi8(1);
  _mm512_store_si512(p.c + row * kQNR * 4, w0);
  _mm512_store_si512(p.c + row * kQNR * 4 + 64, w1);
  g.s0 = _mm512_dpbusd_epi32(g.s0, ones, w0);
  g.s1 = _mm512_dpbusd_epi32(g.s1, ones, w1);
}

DG_PACK_TARGET inline void store_sums(const QPanel& p, int64_t g, const GroupSums& s) {
  const __m512i z = _mm512_setzero_si512();
  _mm512_store_si512(p.C + g * kQNR, _mm512_sub_epi32(z, _mm512_slli_epi32(s.s0, 7)));
  _mm512_store_si512(p.C + g * kQNR + 16, _mm512_sub_epi32(z, _mm512_slli_epi32(s.s1, 7)));
}

// Eight nibble steps from nib: codes minus Z (with Q5_0's fifth bits from hi when given).
DG_PACK_TARGET inline void nibble_group(const uint8_t* nib, const uint8_t* hi, int zero, const QPanel& p, int64_t row0,
                                        int64_t g) {
  const __m512i m4 = _mm512_set1_epi8(15), z = _mm512_set1_epi8(static_cast<char>(zero));
  GroupSums s{_mm512_setzero_si512(), _mm512_setzero_si512()};
  for (int j = 0; j < 8; ++j) {
    _mm_prefetch(reinterpret_cast<const char*>(nib + j * 64 + 2048), _MM_HINT_T0);
    const __m512i v = _mm512_loadu_si512(nib + j * 64);
    __m512i lo = _mm512_and_si512(v, m4), hi4 = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
    if (hi) {
      uint64_t b0, b1;
      std::memcpy(&b0, hi + 16 * j, 8);
      std::memcpy(&b1, hi + 16 * j + 8, 8);
      const __m512i sixteen = _mm512_set1_epi8(16);
      lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(b0, sixteen));
      hi4 = _mm512_or_si512(hi4, _mm512_maskz_mov_epi8(b1, sixteen));
    }
    if (zero) lo = _mm512_sub_epi8(lo, z), hi4 = _mm512_sub_epi8(hi4, z);
    store_step(p, row0 + j, lo, hi4, s);
  }
  store_sums(p, g, s);
}

// S (and M) of one chunk for its 32 outputs, as chunk_scales_scalar.
DG_PACK_TARGET void chunk_scales_avx512(GGMLType t, const uint8_t* chunk, int64_t g0, const QPanel& p) {
  if (t == GGMLType::Q4_K) {
    // S = d * sc[j], M = (-dmin) * m[j] (= -(dmin * m[j]) exactly), 16 outputs per register.
    const __m512i shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (int o0 = 0; o0 < kQNR; o0 += 16) {
      const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + kK4D + 2 * o0)));
      const __m512 nm = _mm512_sub_ps(_mm512_setzero_ps(),
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(chunk + kK4Dmin + 2 * o0))));
      for (int j = 0; j < 16; ++j) {
        __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + kK4Lo + 16 * j)));
        lo = o0 ? _mm512_srli_epi32(lo, 4) : _mm512_and_si512(lo, _mm512_set1_epi32(15));
        uint64_t w;
        std::memcpy(&w, chunk + kK4Hi + 8 * j, 8);
        const __m512i hi = _mm512_and_si512(
            _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(w >> (2 * o0)))), shifts),
            _mm512_set1_epi32(3));
        const __m512 v = _mm512_cvtepi32_ps(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)));
        if (j < 8) _mm512_store_ps(p.S + (g0 + j) * kQNR + o0, _mm512_mul_ps(d, v));
        else _mm512_store_ps(p.M + (g0 + j - 8) * kQNR + o0, _mm512_mul_ps(nm, v));
      }
    }
    return;
  }
  const __m256i* d = reinterpret_cast<const __m256i*>(chunk);
  _mm512_store_ps(p.S + g0 * kQNR, _mm512_cvtph_ps(_mm256_loadu_si256(d)));
  _mm512_store_ps(p.S + g0 * kQNR + 16, _mm512_cvtph_ps(_mm256_loadu_si256(d + 1)));
}

DG_PACK_TARGET void unpack_avx512(const WeightView& w, const Layout& L, const uint8_t* panel, int64_t k0, int64_t kc,
                                  const QPanel& p, bool codes) {
  const uint64_t chunk_bytes = static_cast<uint64_t>(kQNR) * L.block_bytes;
  for (int64_t k = k0; k < k0 + kc; k += L.block) {
    const uint8_t* chunk = panel + static_cast<uint64_t>(k / L.block) * chunk_bytes;
    const int64_t kl = k - k0, g0 = kl / 32, row0 = kl / 4;
    chunk_scales_avx512(w.type, chunk, g0, p);
    if (!codes) continue;
    if (w.type == GGMLType::Q4_K) {
      for (int g = 0; g < 8; ++g) nibble_group(chunk + L.codes + g * 512, nullptr, 0, p, row0 + 8 * g, g0 + g);
      continue;
    }
    if (L.nibbles) {
      nibble_group(chunk + L.codes, L.hi ? chunk + L.hi : nullptr, L.zero, p, row0, g0);
      continue;
    }
    GroupSums s{_mm512_setzero_si512(), _mm512_setzero_si512()};  // Q8_0: the signed codes as stored
    const uint8_t* c = chunk + L.codes;
    for (int j = 0; j < 8; ++j) {
      _mm_prefetch(reinterpret_cast<const char*>(c + j * 128 + 2048), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + j * 128 + 2112), _MM_HINT_T0);
      store_step(p, row0 + j, _mm512_loadu_si512(c + j * 128), _mm512_loadu_si512(c + j * 128 + 64), s);
    }
    store_sums(p, g0, s);
  }
}

// One panel, 64 values of 32 rows at a time: the per-row loaders give 64 codes per row, two
// register transposes turn rows 0..15 and 16..31 into steps, and a step's two halves become
// one register of nibbles (or two of Q8_0 bytes). n_in must be a multiple of 64.
template <class Load>
DG_PACK_TARGET void pack_panel_avx512(const WeightView& w, const Layout& L, int64_t P, uint8_t* panel) {
  const uint64_t chunk_bytes = static_cast<uint64_t>(kQNR) * L.block_bytes;
  alignas(64) float scratch[2 * kQNR + 1];  // the loaders' fp16 scales (unused: the heads come from the blocks)
  for (int64_t b = 0; b < w.n_in / L.block; ++b) {
    const uint8_t* blk[kQNR];
    for (int o = 0; o < kQNR; ++o) blk[o] = w.row(P * kQNR + o) + b * L.block_bytes;
    put_heads(w.type, L, panel + b * chunk_bytes, blk);
  }
  const __m512i z = _mm512_set1_epi8(static_cast<char>(L.nibbles ? L.zero : 0)), m4 = _mm512_set1_epi8(15);
  for (int64_t k = 0; k < w.n_in; k += 64) {
    __m512i a[16], c[16];
    for (int i = 0; i < 16; ++i) {
      a[i] = Load::load(w.row(P * kQNR + i), k, scratch, scratch);
      c[i] = Load::load(w.row(P * kQNR + 16 + i), k, scratch, scratch);
    }
    transpose16x16_32(a);
    transpose16x16_32(c);
    for (int j = 0; j < 16; ++j) {
      const int64_t kk = k + 4 * j;  // first value of this step
      uint8_t* chunk = panel + (kk / L.block) * chunk_bytes;
      const int64_t sj = (kk % L.block) / 4;
      if (!L.nibbles) {
        _mm512_storeu_si512(chunk + L.codes + sj * 128, a[j]);
        _mm512_storeu_si512(chunk + L.codes + sj * 128 + 64, c[j]);
        continue;
      }
      const __m512i lo = _mm512_add_epi8(a[j], z), hi = _mm512_add_epi8(c[j], z);  // back to u
      const __m512i nib = _mm512_or_si512(_mm512_and_si512(lo, m4), _mm512_slli_epi16(_mm512_and_si512(hi, m4), 4));
      _mm512_storeu_si512(chunk + L.codes + sj * 64, nib);
      if (L.hi) {
        const uint64_t h0 = _mm512_test_epi8_mask(lo, _mm512_set1_epi8(16));
        const uint64_t h1 = _mm512_test_epi8_mask(hi, _mm512_set1_epi8(16));
        std::memcpy(chunk + L.hi + 16 * sj, &h0, 8);
        std::memcpy(chunk + L.hi + 16 * sj + 8, &h1, 8);
      }
    }
  }
}

// The SIMD packer of w's type, or false.
bool pack_panel_fast(const WeightView& w, const Layout& L, int64_t P, uint8_t* panel) {
  if (active_isa() < Isa::kAVX512 || w.n_in % 64 != 0) return false;
  switch (w.type) {
    case GGMLType::Q8_0: pack_panel_avx512<LoadQ8_0>(w, L, P, panel); return true;
    case GGMLType::Q4_0: pack_panel_avx512<LoadQ45_0<false>>(w, L, P, panel); return true;
    case GGMLType::Q5_0: pack_panel_avx512<LoadQ45_0<true>>(w, L, P, panel); return true;
    case GGMLType::Q4_K: pack_panel_avx512<LoadQ45_K<false>>(w, L, P, panel); return true;
    default: return false;
  }
}
#endif

}  // namespace

bool qpack_supported(GGMLType t) {
  return t == GGMLType::Q8_0 || t == GGMLType::Q4_0 || t == GGMLType::Q5_0 || t == GGMLType::Q4_K;
}

bool qpack_applies(const WeightView& w) {
  if (w.packed || !qpack_supported(w.type) || w.n_out % kQNR != 0 || w.n_out <= 0) return false;
  const Layout L = layout(w.type);
  return w.n_in % L.block == 0 && w.row_bytes == static_cast<uint64_t>(w.n_in / L.block) * L.block_bytes;
}

void qpack_panels(const WeightView& w, int64_t p0, int64_t p1, uint8_t* dst) {
  const Layout L = layout(w.type);
  const uint64_t chunk_bytes = static_cast<uint64_t>(kQNR) * L.block_bytes;
  alignas(64) uint8_t u[kQNR][256];  // the chunk's unsigned codes, row by row
  for (int64_t P = p0; P < p1; ++P) {
    uint8_t* panel = dst + static_cast<uint64_t>(P) * kQNR * w.row_bytes;
#ifdef DG_X86
    if (pack_panel_fast(w, L, P, panel)) continue;
#endif
    for (int64_t b = 0; b < w.n_in / L.block; ++b) {
      uint8_t* chunk = panel + b * chunk_bytes;
      const uint8_t* blk[kQNR];
      for (int o = 0; o < kQNR; ++o) blk[o] = w.row(P * kQNR + o) + b * L.block_bytes;
      put_heads(w.type, L, chunk, blk);
      if (!L.nibbles) {  // Q8_0: 4 stored bytes at a time
        for (int j = 0; j < 8; ++j)
          for (int o = 0; o < kQNR; ++o) std::memcpy(chunk + L.codes + q8_byte(o, 4 * j), blk[o] + 2 + 4 * j, 4);
        continue;
      }
      for (int o = 0; o < kQNR; ++o) {
        const uint8_t* q = blk[o];
        switch (w.type) {
          case GGMLType::Q4_0: case GGMLType::Q5_0: {
            const uint8_t* qs = q + (w.type == GGMLType::Q5_0 ? 6 : 2);
            for (int l = 0; l < 16; ++l) u[o][l] = qs[l] & 15, u[o][l + 16] = qs[l] >> 4;
            if (w.type == GGMLType::Q5_0) {
              uint32_t qh;
              std::memcpy(&qh, q + 2, 4);
              for (int l = 0; l < 32; ++l) u[o][l] |= static_cast<uint8_t>(((qh >> l) & 1u) << 4);
            }
            break;
          }
          default:  // Q4_K: value 64p + l = low nibble of qs[32p + l], 64p + 32 + l its high nibble
            for (int p4 = 0; p4 < 4; ++p4)
              for (int l = 0; l < 32; ++l) {
                const uint8_t v = q[16 + 32 * p4 + l];
                u[o][64 * p4 + l] = v & 15, u[o][64 * p4 + 32 + l] = v >> 4;
              }
        }
      }
      uint8_t* nib = chunk + L.codes;
      for (int j = 0; j < L.block / 4; ++j)
        for (int o = 0; o < 16; ++o)
          for (int i = 0; i < 4; ++i)
            nib[j * 64 + o * 4 + i] = static_cast<uint8_t>((u[o][4 * j + i] & 15) | (u[o + 16][4 * j + i] & 15) << 4);
      if (L.hi) {
        for (int j = 0; j < L.block / 4; ++j)
          for (int half = 0; half < 2; ++half) {
            uint64_t word = 0;
            for (int o = 0; o < 16; ++o)
              for (int i = 0; i < 4; ++i) word |= static_cast<uint64_t>(u[16 * half + o][4 * j + i] >> 4) << (4 * o + i);
            std::memcpy(chunk + L.hi + 8 * (2 * j + half), &word, 8);
          }
      }
    }
  }
}

void qunpack_rows(const WeightView& w, uint8_t* dst) {
  const Layout L = layout(w.type);
  const uint64_t chunk_bytes = static_cast<uint64_t>(kQNR) * L.block_bytes;
  for (int64_t P = 0; P < w.n_out / kQNR; ++P) {
    const uint8_t* panel = w.row(P * kQNR);
    for (int64_t b = 0; b < w.n_in / L.block; ++b) {
      const uint8_t* chunk = panel + b * chunk_bytes;
      for (int o = 0; o < kQNR; ++o) {
        uint8_t* blk = dst + static_cast<uint64_t>(P * kQNR + o) * w.row_bytes + b * L.block_bytes;
        std::memset(blk, 0, static_cast<size_t>(L.block_bytes));
        if (w.type == GGMLType::Q4_K) get_k4_head(chunk, o, blk);
        else std::memcpy(blk, chunk + L.head * o, static_cast<size_t>(L.head));
        for (int kk = 0; kk < L.block; ++kk) put_block_code(w.type, blk, kk, code_at(L, chunk, o, kk));
      }
    }
  }
}

WeightView restored_rows(const WeightView& w, std::vector<uint8_t>& buf) {
  if (!w.packed) return w;
  const size_t bytes = static_cast<size_t>(w.n_out) * w.row_bytes;
  if (buf.size() < bytes) buf.resize(bytes);
  qunpack_rows(w, buf.data());
  WeightView r = w;
  r.data = buf.data();
  r.packed = false;
  return r;
}

namespace {
void unpack_panel(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QPanel& p, bool codes) {
  const Layout L = layout(w.type);
  const uint8_t* panel = w.row(c0);
#ifdef DG_X86
  if (active_isa() >= Isa::kAVX512) return unpack_avx512(w, L, panel, k0, kc, p, codes);
#endif
  unpack_scalar(w, L, panel, k0, kc, p, codes);
}
}  // namespace

void unpack_qpanel(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QPanel& p) {
  unpack_panel(w, c0, k0, kc, p, true);
}

void unpack_qscales(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QPanel& p) {
  unpack_panel(w, c0, k0, kc, p, false);
}

QPackLayout qpack_layout(GGMLType t) { return layout(t); }

}  // namespace dg

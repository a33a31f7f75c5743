#include "cpu/qpanel.h"

#include <cstring>

#include "cpu/cpu_features.h"
#include "quant/dequantize.h"
#include "quant/blocks.h"
#include "quant/k_scales.h"
#include "quant/scalars.h"

#include "cpu/x86_simd.h"
#ifdef DG_X86
#include "cpu/block_loaders_avx512.h"
#endif

namespace dg {
namespace {

using namespace quant;

// Per-row decoders: values [k0, k0 + kc) of one weight row into u (row-major bytes) and the
// row's column `o` of S and M (strides kQNR). k0, kc are multiples of the block size.
struct RowOut {
  uint8_t* u;     // kc bytes
  float* S;       // S[g * kQNR]
  float* M;       // M[b * kQNR]
  uint16_t* S16;  // legacy formats: the fp16 scales, S16[b * kQNR] (widened in bulk afterwards)
  uint16_t* M16;  // legacy formats with a min: the fp16 mins
};

// u[0..16) = low nibbles of qs[0..16), u[16..32) = high nibbles (the legacy 4-bit layout).
inline void nibbles_lo_hi(const uint8_t* qs, uint8_t* u) {
  for (int j = 0; j < 16; ++j) {
    u[j] = qs[j] & 15;
    u[j + 16] = qs[j] >> 4;
  }
}

// The scales and offsets of each format (shared by the scalar and SIMD code decoders).
struct Legacy {
  const uint8_t* qs;
  const uint8_t* qh;  // Q5_0 / Q5_1
};
inline Legacy legacy_block(GGMLType t, const uint8_t* row, int64_t i, const RowOut& o) {
  switch (t) {
    case GGMLType::Q8_0: {
      const auto& b = reinterpret_cast<const BlockQ8_0*>(row)[i];
      o.S16[0] = b.d;
      return {reinterpret_cast<const uint8_t*>(b.qs), nullptr};
    }
    case GGMLType::Q4_0: {
      const auto& b = reinterpret_cast<const BlockQ4_0*>(row)[i];
      o.S16[0] = b.d;
      return {b.qs, nullptr};
    }
    case GGMLType::Q4_1: {
      const auto& b = reinterpret_cast<const BlockQ4_1*>(row)[i];
      o.S16[0] = b.d;
      o.M16[0] = b.m;
      return {b.qs, nullptr};
    }
    case GGMLType::Q5_0: {
      const auto& b = reinterpret_cast<const BlockQ5_0*>(row)[i];
      o.S16[0] = b.d;
      return {b.qs, b.qh};
    }
    default: {  // Q5_1
      const auto& b = reinterpret_cast<const BlockQ5_1*>(row)[i];
      o.S16[0] = b.d;
      o.M16[0] = b.m;
      return {b.qs, b.qh};
    }
  }
}

bool is_legacy(GGMLType t) {
  return t == GGMLType::Q8_0 || t == GGMLType::Q4_0 || t == GGMLType::Q4_1 || t == GGMLType::Q5_0 ||
         t == GGMLType::Q5_1;
}

// Q4_K / Q5_K super-block i: S, M of its 8 sub-blocks; returns the block.
template <class B>
inline const B& k45_block(const uint8_t* row, int64_t i, const RowOut& o) {
  const B& b = reinterpret_cast<const B*>(row)[i];
  const float d = half_to_f32(b.d), dmin = half_to_f32(b.dmin);
  uint8_t sc[8], m[8];
  unpack_scales(b.scales, sc, m);
  for (int j = 0; j < 8; ++j) {
    o.S[j * kQNR] = d * static_cast<float>(sc[j]);
    o.M[j * kQNR] = -(dmin * static_cast<float>(m[j]));
  }
  return b;
}

inline const BlockQ6_K& q6k_block(const uint8_t* row, int64_t i, const RowOut& o) {
  const auto& b = reinterpret_cast<const BlockQ6_K*>(row)[i];
  const float d = half_to_f32(b.d);
  for (int g = 0; g < 16; ++g) o.S[g * kQNR] = d * static_cast<float>(b.scales[g]);
  return b;
}

inline const BlockNVFP4& nvfp4_block(const uint8_t* row, int64_t i, const RowOut& o) {
  const auto& b = reinterpret_cast<const BlockNVFP4*>(row)[i];
  for (int s = 0; s < 4; ++s) o.S[s * kQNR] = ue4m3_to_f32(b.d[s]);
  return b;
}

inline RowOut advance(const RowOut& o, int64_t values, int64_t groups, int64_t blocks32) {
  return {o.u + values, o.S + groups * kQNR, o.M + blocks32 * kQNR, o.S16 + blocks32 * kQNR, o.M16 + blocks32 * kQNR};
}

// NVFP4 codes -> doubled E2M1 value + 12.
alignas(16) constexpr uint8_t kFP4Table[16] = {12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0};

// ---- scalar decoders --------------------------------------------------------------------------

void decode_row_scalar(GGMLType t, const uint8_t* row, int64_t k0, int64_t kc, const RowOut& out) {
  const QFormat f = qformat(t);
  for (int64_t i = 0; i < kc / f.block; ++i) {
    const int64_t blk = k0 / f.block + i;
    const RowOut o = advance(out, i * f.block, i * f.block / f.group, i * f.block / 32);
    uint8_t* u = o.u;
    switch (t) {
      case GGMLType::Q8_0: case GGMLType::Q4_0: case GGMLType::Q4_1: case GGMLType::Q5_0: case GGMLType::Q5_1: {
        const Legacy l = legacy_block(t, row, blk, o);
        if (t == GGMLType::Q8_0) {
          for (int j = 0; j < kQK; ++j) u[j] = static_cast<uint8_t>(l.qs[j] ^ 0x80);
          break;
        }
        nibbles_lo_hi(l.qs, u);
        if (l.qh) {
          uint32_t qh;
          std::memcpy(&qh, l.qh, 4);
          for (int j = 0; j < kQK; ++j) u[j] = static_cast<uint8_t>(u[j] | (((qh >> j) & 1u) << 4));
        }
        break;
      }
      case GGMLType::Q4_K: case GGMLType::Q5_K: {
        const bool five = t == GGMLType::Q5_K;
        const uint8_t* qs = five ? k45_block<BlockQ5_K>(row, blk, o).qs : k45_block<BlockQ4_K>(row, blk, o).qs;
        const uint8_t* qh = five ? reinterpret_cast<const BlockQ5_K*>(row)[blk].qh : nullptr;
        for (int j = 0; j < 8; ++j) {
          const uint8_t* q = qs + kQK * (j / 2);
          const int shift = 4 * (j & 1);
          for (int l = 0; l < kQK; ++l) {
            int v = (q[l] >> shift) & 15;
            if (five) v |= ((qh[l] >> j) & 1) << 4;
            u[kQK * j + l] = static_cast<uint8_t>(v);
          }
        }
        break;
      }
      case GGMLType::Q6_K: {
        const BlockQ6_K& b = q6k_block(row, blk, o);
        for (int v = 0; v < kQKK; ++v) {
          const int h = v / 128, r = v % 128;
          const int lo = (b.ql[64 * h + r % 64] >> (4 * (r / 64))) & 15;
          const int hi = (b.qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
          u[v] = static_cast<uint8_t>(lo | (hi << 4));
        }
        break;
      }
      case GGMLType::NVFP4: {
        const BlockNVFP4& b = nvfp4_block(row, blk, o);
        for (int s = 0; s < 4; ++s) {
          for (int j = 0; j < 8; ++j) {
            const uint8_t byte = b.qs[8 * s + j];
            u[16 * s + j] = kFP4Table[byte & 15];
            u[16 * s + j + 8] = kFP4Table[byte >> 4];
          }
        }
        break;
      }
      default: break;
    }
  }
}

// ---- AVX2 decoders (the same bytes) ---------------------------------------------------------

#ifdef DG_X86
// 32 codes of a legacy 4-bit block: low nibbles of qs[0..16), then the high nibbles.
__attribute__((target("avx2"))) inline __m256i nibbles_lo_hi_avx2(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m = _mm_set1_epi8(15);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

// 32 bytes, byte i = (bit i of the little-endian qh) << shift.
__attribute__((target("avx2"))) inline __m256i high_bits_avx2(uint32_t qh, int shift) {
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                            _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                               0x0303030303030303LL));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(static_cast<char>(1 << shift)));
}

__attribute__((target("avx2"))) void decode_row_avx2(GGMLType t, const uint8_t* row, int64_t k0, int64_t kc,
                                                     const RowOut& out) {
  const QFormat f = qformat(t);
  const __m256i m4 = _mm256_set1_epi8(15);
  for (int64_t i = 0; i < kc / f.block; ++i) {
    const int64_t blk = k0 / f.block + i;
    const RowOut o = advance(out, i * f.block, i * f.block / f.group, i * f.block / 32);
    uint8_t* u = o.u;
    switch (t) {
      case GGMLType::Q8_0: case GGMLType::Q4_0: case GGMLType::Q4_1: case GGMLType::Q5_0: case GGMLType::Q5_1: {
        const Legacy l = legacy_block(t, row, blk, o);
        if (t == GGMLType::Q8_0) {
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(l.qs));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u), _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))));
          break;
        }
        __m256i q = nibbles_lo_hi_avx2(l.qs);
        if (l.qh) {
          uint32_t qh;
          std::memcpy(&qh, l.qh, 4);
          q = _mm256_or_si256(q, high_bits_avx2(qh, 4));
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(u), q);
        break;
      }
      case GGMLType::Q4_K: case GGMLType::Q5_K: {
        const bool five = t == GGMLType::Q5_K;
        const uint8_t* qs = five ? k45_block<BlockQ5_K>(row, blk, o).qs : k45_block<BlockQ4_K>(row, blk, o).qs;
        const __m256i h =
            five ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ5_K*>(row)[blk].qh))
                 : _mm256_setzero_si256();
        const __m256i one = _mm256_set1_epi8(1);
        for (int p = 0; p < 4; ++p) {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * p));
          __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
          if (five) {
            // bit 2p of qh[l] is bit 4 of value l of sub-block 2p; bit 2p + 1 that of 2p + 1.
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * p)), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * p + 1)), one), 4));
          }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * p), lo);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 64 * p + 32), hi);
        }
        break;
      }
      case GGMLType::Q6_K: {
        const BlockQ6_K& b = q6k_block(row, blk, o);
        const __m256i m2 = _mm256_set1_epi8(3);
        for (int h = 0; h < 2; ++h) {
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * h));
          for (int q4 = 0; q4 < 4; ++q4) {
            const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * h + 32 * (q4 & 1)));
            const __m256i lo = q4 < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
            const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * q4)), m2);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + 128 * h + 32 * q4), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
          }
        }
        break;
      }
      case GGMLType::NVFP4: {
        const BlockNVFP4& b = nvfp4_block(row, blk, o);
        const __m128i tab = _mm_load_si128(reinterpret_cast<const __m128i*>(kFP4Table));
        const __m128i m = _mm_set1_epi8(15);
        for (int s = 0; s < 4; s += 2) {
          // 16 bytes = sub-blocks s and s + 1: low nibbles codes 0..7, high nibbles codes 8..15 of each.
          const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs + 8 * s));
          const __m128i lo = _mm_shuffle_epi8(tab, _mm_and_si128(v, m));
          const __m128i hi = _mm_shuffle_epi8(tab, _mm_and_si128(_mm_srli_epi16(v, 4), m));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(u + 16 * s), _mm_unpacklo_epi64(lo, hi));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(u + 16 * s + 16), _mm_unpackhi_epi64(lo, hi));
        }
        break;
      }
      default: break;
    }
  }
}
#endif

// ---- staging rows -> VNNI layout ----------------------------------------------------------------

constexpr int64_t kStageLd = kQKC + 64;  // staging row stride (bytes)

void transpose_scalar(const uint8_t* stage, int64_t kc, uint8_t* u) {
  for (int64_t i = 0; i < kc / 4; ++i)
    for (int64_t o = 0; o < kQNR; ++o) std::memcpy(u + (i * kQNR + o) * 4, stage + o * kStageLd + 4 * i, 4);
}

#ifdef DG_X86
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) void transpose_avx512(const uint8_t* stage, int64_t kc, uint8_t* u) {
  for (int64_t o0 = 0; o0 < kQNR; o0 += 16) {
    for (int64_t k = 0; k < kc; k += 64) {
      __m512i r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(stage + (o0 + i) * kStageLd + k);
      transpose16x16_32(r);
      for (int i = 0; i < 16; ++i) _mm512_store_si512(u + ((k / 4 + i) * kQNR + o0) * 4, r[i]);
    }
  }
}
// Straight from the blocks into the VNNI layout, without staging rows: per 16 rows and 64
// values, a loader (block_loaders_avx512.h) makes each row's 64 codes (one register) and writes
// the scales of their groups; one register transpose then stores 16 rows of the layout.
template <class Load>
DG_PANEL_TARGET void fused_panel_avx512(const WeightView& w, int64_t c0, int64_t n, int64_t k0, int64_t kc,
                                        const QPanel& p, const QFormat& f) {
  for (int64_t o0 = 0; o0 < kQNR; o0 += 16) {
    for (int64_t k = 0; k < kc; k += 64) {
      // The same values of the rows 16 further on are fetched while these decode (the mapped
      // file's 4 KiB pages stop the hardware prefetchers at every page boundary): 64 values take
      // at most 68 bytes, two cache lines.
      const uint64_t a = static_cast<uint64_t>(k0 + k) * f.block_bytes / f.block;
      for (int i = 0; i < 16 && c0 + o0 + i + 16 < w.n_out; ++i) {
        const uint8_t* ahead = w.row(c0 + o0 + i + 16) + a;
        __builtin_prefetch(ahead, 0, 3);
        __builtin_prefetch(ahead + 64, 0, 3);
      }
      if constexpr (Load::kSuper) {
        if (k % 256 == 0) {  // one super-block of 16 rows: its 16 scale lanes per row, transposed
          __m512 sc[16];
          for (int i = 0; i < 16; ++i)
            sc[i] = o0 + i < n ? Load::scales(w.row(c0 + o0 + i) + ((k0 + k) / 256) * Load::kBytes) : _mm512_setzero_ps();
          __m512i* t = reinterpret_cast<__m512i*>(sc);
          transpose16x16_32(t);
          // lane j of a row -> scale j: Q6_K groups 0..15, or Q4_K/Q5_K S[0..7] then M[0..7].
          for (int j = 0; j < 16; ++j) {
            float* dst = f.has_min ? (j < 8 ? p.S + (k / 32 + j) * kQNR : p.M + (k / 32 + j - 8) * kQNR)
                                   : p.S + (k / 16 + j) * kQNR;
            _mm512_storeu_ps(dst + o0, sc[j]);
          }
        }
      }
      __m512i r[16];
      for (int i = 0; i < 16; ++i) {
        float* S = p.S + (k / f.group) * kQNR + o0 + i;
        float* M = p.M + (k / 32) * kQNR + o0 + i;
        if (o0 + i >= n) {
          r[i] = _mm512_setzero_si512();
          if (!Load::kSuper) {
            for (int64_t g = 0; g < 64 / f.group; ++g) S[g * kQNR] = 0.0f;
            if (f.has_min)
              for (int64_t b = 0; b < 2; ++b) M[b * kQNR] = 0.0f;
          }
          continue;
        }
        r[i] = Load::load(w.row(c0 + o0 + i), k0 + k, S, M);
      }
      transpose16x16_32(r);
      for (int j = 0; j < 16; ++j) _mm512_store_si512(p.c + ((k / 4 + j) * kQNR + o0) * 4, r[j]);
      // C of the chunk's groups: -128 * (sum of each group's codes), 16 outputs at a time.
      const __m512i ones = _mm512_set1_epi8(1);
      const int quads = f.group / 4;
      for (int g = 0; g < 16 / quads; ++g) {
        __m512i sum = _mm512_setzero_si512();
        for (int j = g * quads; j < (g + 1) * quads; ++j) sum = _mm512_dpbusd_epi32(sum, ones, r[j]);
        _mm512_store_si512(p.C + (k / f.group + g) * kQNR + o0, _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7)));
      }
    }
  }
}

// The fused path of a type, or false (k0 and kc must be multiples of 64, and of 256 for K-quants).
bool fused_panel(const WeightView& w, int64_t c0, int64_t n, int64_t k0, int64_t kc, const QPanel& p) {
  if (active_isa() < Isa::kAVX512 || kc % 64 != 0 || k0 % 64 != 0) return false;
  const QFormat f = qformat(w.type);
  if (f.block == 256 && (kc % 256 != 0 || k0 % 256 != 0)) return false;
  switch (w.type) {
    case GGMLType::Q8_0: fused_panel_avx512<LoadQ8_0>(w, c0, n, k0, kc, p, f); return true;
    case GGMLType::Q4_0: fused_panel_avx512<LoadQ45_0<false>>(w, c0, n, k0, kc, p, f); return true;
    case GGMLType::Q5_0: fused_panel_avx512<LoadQ45_0<true>>(w, c0, n, k0, kc, p, f); return true;
    case GGMLType::Q4_K: fused_panel_avx512<LoadQ45_K<false>>(w, c0, n, k0, kc, p, f); return true;
    case GGMLType::Q5_K: fused_panel_avx512<LoadQ45_K<true>>(w, c0, n, k0, kc, p, f); return true;
    case GGMLType::Q6_K: fused_panel_avx512<LoadQ6_K>(w, c0, n, k0, kc, p, f); return true;
    default: return false;
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// 8 x 8 dword transposes.
__attribute__((target("avx2"))) void transpose_avx2(const uint8_t* stage, int64_t kc, uint8_t* u) {
  for (int64_t o0 = 0; o0 < kQNR; o0 += 8) {
    for (int64_t k = 0; k < kc; k += 32) {
      __m256i r[8], t[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(stage + (o0 + i) * kStageLd + k));
      for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
      }
      for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
      }
      // r[j] lane L holds dword 4L + j of rows 4*(j/4)..: combine lanes of rows 0-3 and 4-7.
      for (int j = 0; j < 4; ++j) {
        t[j] = _mm256_permute2x128_si256(r[j], r[j + 4], 0x20);
        t[j + 4] = _mm256_permute2x128_si256(r[j], r[j + 4], 0x31);
      }
      for (int i = 0; i < 8; ++i) _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + ((k / 4 + i) * kQNR + o0) * 4), t[i]);
    }
  }
}
#endif

// Staged panels hold the unsigned codes u: make them c = u - Z and fill C = -128 * group sums.
void finish_panel_scalar(const QPanel& p, int64_t kc, const QFormat& f) {
  for (int64_t g = 0; g < kc / f.group; ++g) {
    for (int64_t o = 0; o < kQNR; ++o) {
      int32_t sum = 0;
      for (int64_t k = g * f.group; k < (g + 1) * f.group; ++k) {
        int8_t* c = p.c + ((k / 4) * kQNR + o) * 4 + k % 4;
        *c = static_cast<int8_t>(static_cast<uint8_t>(*c) - f.zero);
        sum += *c;
      }
      p.C[g * kQNR + o] = -128 * sum;
    }
  }
}

#ifdef DG_X86
__attribute__((target("avx2"))) void finish_panel_avx2(const QPanel& p, int64_t kc, const QFormat& f) {
  const __m256i z = _mm256_set1_epi8(static_cast<char>(f.zero)), ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < kc / f.group; ++g) {
    for (int64_t o0 = 0; o0 < kQNR; o0 += 8) {
      __m256i sum = _mm256_setzero_si256();
      for (int64_t i = g * f.group / 4; i < (g + 1) * f.group / 4; ++i) {
        __m256i* q = reinterpret_cast<__m256i*>(p.c + (i * kQNR + o0) * 4);
        const __m256i c = _mm256_sub_epi8(_mm256_load_si256(q), z);
        _mm256_store_si256(q, c);
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, c), ones16));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p.C + g * kQNR + o0), _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sum, 7)));
    }
  }
}
#endif

void finish_panel(const QPanel& p, int64_t kc, const QFormat& f, Isa isa) {
#ifdef DG_X86
  if (isa != Isa::kScalar) return finish_panel_avx2(p, kc, f);
#endif
  (void)isa;
  finish_panel_scalar(p, kc, f);
}

constexpr int64_t kPrefetchRows = 4;  // rows decoded while the prefetched ones arrive

struct Stage {
  alignas(64) uint8_t rows[kQNR * kStageLd];
  alignas(64) uint16_t S16[(kQKC / 32) * kQNR];
  alignas(64) uint16_t M16[(kQKC / 32) * kQNR];
};

// dst[i] = fp16 src[i] widened, n a multiple of 16.
void widen_halves_scalar(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_f32(src[i]);
}
#ifdef DG_X86
__attribute__((target("avx2,f16c"))) void widen_halves_f16c(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += 8)
    _mm256_store_ps(dst + i, _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(src + i))));
}
#endif

}  // namespace

void decode_qrow(GGMLType t, const uint8_t* row, int64_t k0, int64_t kc, uint8_t* u, float* S, float* M) {
  // One row on its own: S and M with stride 1 (RowOut strides are kQNR), halves widened here.
  thread_local float s_buf[kQKC / 16 * kQNR], m_buf[kQKC / 32 * kQNR];
  thread_local uint16_t s16[kQKC / 32 * kQNR], m16[kQKC / 32 * kQNR];
  const QFormat f = qformat(t);
  const RowOut out{u, s_buf, m_buf, s16, m16};
#ifdef DG_X86
  if (active_isa() != Isa::kScalar) decode_row_avx2(t, row, k0, kc, out);
  else
#endif
    decode_row_scalar(t, row, k0, kc, out);
  const bool legacy = is_legacy(t);
  for (int64_t g = 0; g < kc / f.group; ++g) S[g] = legacy ? half_to_f32(s16[g * kQNR]) : s_buf[g * kQNR];
  if (f.has_min)
    for (int64_t b = 0; b < kc / 32; ++b) M[b] = legacy ? half_to_f32(m16[b * kQNR]) : m_buf[b * kQNR];
}

bool qformat_supported(GGMLType t) {
  switch (t) {
    case GGMLType::Q8_0: case GGMLType::Q4_0: case GGMLType::Q4_1: case GGMLType::Q5_0: case GGMLType::Q5_1:
    case GGMLType::Q4_K: case GGMLType::Q5_K: case GGMLType::Q6_K: case GGMLType::NVFP4:
      return true;
    default:
      return false;
  }
}

QFormat qformat(GGMLType t) {
  switch (t) {
    case GGMLType::Q8_0: return {32, 128, false, 32, 34, 128};
    case GGMLType::Q4_0: return {32, 8, false, 32, 18, 8};
    case GGMLType::Q5_0: return {32, 16, false, 32, 22, 16};
    case GGMLType::Q4_1: return {32, 0, true, 32, 20, 15};
    case GGMLType::Q5_1: return {32, 0, true, 32, 24, 31};
    case GGMLType::Q4_K: return {32, 0, true, 256, 144, 15};
    case GGMLType::Q5_K: return {32, 0, true, 256, 176, 31};
    case GGMLType::Q6_K: return {16, 32, false, 256, 210, 32};
    case GGMLType::NVFP4: return {16, 12, false, 64, 36, 12};
    default: return {};
  }
}

void decode_qpanel(const WeightView& w, int64_t c0, int64_t n, int64_t k0, int64_t kc, const QPanel& p) {
  thread_local Stage stage;
  const QFormat f = qformat(w.type);
  const Isa isa = active_isa();
#ifdef DG_X86
  if (fused_panel(w, c0, n, k0, kc, p)) return;
#endif
  const bool legacy = is_legacy(w.type);
  const uint64_t row_span = dequant_row_bytes(w.type, k0 + kc) - dequant_row_bytes(w.type, k0);
  for (int64_t o = 0; o < kQNR; ++o) {
    // The weights come from a file mapping in 4 KiB pages, where the hardware prefetchers stop
    // at every page boundary: fetch a few rows ahead ourselves (into the next panel at the end).
    if (c0 + o + kPrefetchRows < w.n_out) {
      const uint8_t* ahead = w.row(c0 + o + kPrefetchRows) + dequant_row_bytes(w.type, k0);
      for (uint64_t b = 0; b < row_span; b += 64) __builtin_prefetch(ahead + b, 0, 3);
    }
    const RowOut out{stage.rows + o * kStageLd, p.S + o, p.M + o, stage.S16 + o, stage.M16 + o};
    if (o >= n) {
      std::memset(out.u, 0, static_cast<size_t>(kc));
      for (int64_t g = 0; g < kc / f.group; ++g) out.S[g * kQNR] = 0.0f, out.S16[g * kQNR] = 0;
      if (f.has_min)
        for (int64_t b = 0; b < kc / 32; ++b) out.M[b * kQNR] = 0.0f, out.M16[b * kQNR] = 0;
      continue;
    }
#ifdef DG_X86
    if (isa != Isa::kScalar) {
      decode_row_avx2(w.type, w.row(c0 + o), k0, kc, out);
      continue;
    }
#endif
    decode_row_scalar(w.type, w.row(c0 + o), k0, kc, out);
  }
  if (legacy) {  // the fp16 scales (and mins) of all rows, widened at once (exact either way)
    const int64_t n_sc = kc / 32 * kQNR;
#ifdef DG_X86
    if (isa != Isa::kScalar) {
      widen_halves_f16c(stage.S16, p.S, n_sc);
      if (f.has_min) widen_halves_f16c(stage.M16, p.M, n_sc);
    } else
#endif
    {
      widen_halves_scalar(stage.S16, p.S, n_sc);
      if (f.has_min) widen_halves_scalar(stage.M16, p.M, n_sc);
    }
  }
#ifdef DG_X86
  uint8_t* codes = reinterpret_cast<uint8_t*>(p.c);
  if (isa >= Isa::kAVX512) transpose_avx512(stage.rows, kc, codes);
  else if (isa != Isa::kScalar) transpose_avx2(stage.rows, kc, codes);
  else
#endif
    transpose_scalar(stage.rows, kc, reinterpret_cast<uint8_t*>(p.c));
  finish_panel(p, kc, f, isa);
}

}  // namespace dg

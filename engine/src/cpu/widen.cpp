#include "cpu/widen.h"

#include <algorithm>
#include <cstring>

#include "cpu/cpu_features.h"
#include "cpu/qpanel.h"
#include "quant/dequantize.h"

#include "cpu/x86_simd.h"

// GCC 12 warns inside its own masked-load intrinsics: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace dg {
namespace {

constexpr int64_t kSpan = kWidenSpan;

// The types widen_avx2 decodes (the float ones and qpanel.h's block formats).
bool lanes_decode(GGMLType t) {
  return t == GGMLType::F32 || t == GGMLType::F16 || t == GGMLType::BF16 || qformat_supported(t);
}

#ifdef DG_X86
// The 32 six-bit codes of Q6_K values 128h + 32q4 + l (l < 32, dequantize_q6_k's order).
__attribute__((target("avx2"))) inline __m256i q6k_codes32(const uint8_t* blk, int h, int q4) {
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
  const __m256i ql = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 64 * h + 32 * (q4 & 1)));
  const __m256i lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (q4 >> 1))), _mm256_set1_epi8(15));
  const __m256i hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * q4)), _mm256_set1_epi8(3));
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

__attribute__((target("avx512f,avx512bw,avx512vl,f16c"))) void widen_avx512(const WeightView& w, int64_t r, int64_t c0, int64_t n, float* dst) {
  const uint8_t* row = w.row(r);
  switch (w.type) {
    case GGMLType::Q8_0:  // 34-byte blocks {fp16 d, int8 q[32]}: d * q
      for (int64_t i = 0; i < n; i += 16) {
        const uint8_t* blk = row + ((c0 + i) / 32) * 34;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 + (c0 + i) % 32));
        _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(dh)), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))));
      }
      return;
    case GGMLType::F32: std::memcpy(dst, reinterpret_cast<const float*>(row) + c0, sizeof(float) * n); return;
    case GGMLType::F16:
      for (int64_t i = 0; i < n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * (c0 + i)))));
      return;
    case GGMLType::BF16:
      for (int64_t i = 0; i < n; i += 16) {
        const __m512i u = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + 2 * (c0 + i))));
        _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(u, 16)));
      }
      return;
    case GGMLType::Q6_K:
      if (c0 % 256 == 0 && n % 256 == 0) {  // whole super-blocks: (d * sc[g]) * (q - 32)
        for (int64_t sb = 0; sb < n / 256; ++sb) {
          const uint8_t* blk = row + (c0 / 256 + sb) * 210;
          uint16_t dh;
          std::memcpy(&dh, blk + 208, 2);
          const __m512 d = _mm512_set1_ps(_cvtsh_ss(dh));
          const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
          for (int h = 0; h < 2; ++h) {
            for (int q4 = 0; q4 < 4; ++q4) {
              const __m256i q = q6k_codes32(blk, h, q4);
              for (int part = 0; part < 2; ++part) {
                const int64_t v = 128 * h + 32 * q4 + 16 * part;  // 16 values of group v / 16
                const __m512i qi = _mm512_sub_epi32(
                    _mm512_cvtepu8_epi32(part ? _mm256_extracti128_si256(q, 1) : _mm256_castsi256_si128(q)),
                    _mm512_set1_epi32(32));
                const __m512 ds = _mm512_mul_ps(d, _mm512_set1_ps(static_cast<float>(sc[v / 16])));
                _mm512_storeu_ps(dst + sb * 256 + v, _mm512_mul_ps(ds, _mm512_cvtepi32_ps(qi)));
              }
            }
          }
        }
        return;
      }
      break;
    default: break;
  }
  const QFormat f = qformat(w.type);
  const int64_t a0 = c0 / f.block * f.block, a1 = (c0 + n + f.block - 1) / f.block * f.block;
  alignas(64) uint8_t u[2 * kSpan + 64];
  alignas(64) float S[2 * kSpan / 16], M[2 * kSpan / 32];
  decode_qrow(w.type, row, a0, a1 - a0, u, S, M);
  const __m512i z = _mm512_set1_epi32(f.zero);
  for (int64_t i = 0; i < n; i += 16) {
    const int64_t k = c0 - a0 + i;  // 16 values inside one group (groups are 16 or 32 wide)
    const __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(u + k))), z);
    __m512 v = _mm512_mul_ps(_mm512_set1_ps(S[k / f.group]), _mm512_cvtepi32_ps(q));
    if (f.has_min) v = _mm512_add_ps(v, _mm512_set1_ps(M[k / 32]));
    _mm512_storeu_ps(dst + i, v);
  }
}

// The same arithmetic in 8 lanes.
__attribute__((target("avx2,fma,f16c"))) void widen_avx2(const WeightView& w, int64_t r, int64_t c0, int64_t n, float* dst) {
  const uint8_t* row = w.row(r);
  switch (w.type) {
    case GGMLType::Q8_0:
      for (int64_t i = 0; i < n; i += 8) {
        const uint8_t* blk = row + ((c0 + i) / 32) * 34;
        uint16_t dh;
        std::memcpy(&dh, blk, 2);
        const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + (c0 + i) % 32));
        _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(dh)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))));
      }
      return;
    case GGMLType::F32: std::memcpy(dst, reinterpret_cast<const float*>(row) + c0, sizeof(float) * n); return;
    case GGMLType::F16:
      for (int64_t i = 0; i < n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * (c0 + i)))));
      return;
    case GGMLType::BF16:
      for (int64_t i = 0; i < n; i += 8) {
        const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * (c0 + i))));
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(u, 16)));
      }
      return;
    case GGMLType::Q6_K:
      if (c0 % 256 == 0 && n % 256 == 0) {  // whole super-blocks: (d * sc[g]) * (q - 32)
        for (int64_t sb = 0; sb < n / 256; ++sb) {
          const uint8_t* blk = row + (c0 / 256 + sb) * 210;
          uint16_t dh;
          std::memcpy(&dh, blk + 208, 2);
          const __m256 d = _mm256_set1_ps(_cvtsh_ss(dh));
          const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
          for (int h = 0; h < 2; ++h) {
            for (int q4 = 0; q4 < 4; ++q4) {
              alignas(32) uint8_t q[32];
              _mm256_store_si256(reinterpret_cast<__m256i*>(q), q6k_codes32(blk, h, q4));
              for (int part = 0; part < 4; ++part) {
                const int64_t v = 128 * h + 32 * q4 + 8 * part;  // 8 values of group v / 16
                const __m256i qi = _mm256_sub_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * part))),
                    _mm256_set1_epi32(32));
                const __m256 ds = _mm256_mul_ps(d, _mm256_set1_ps(static_cast<float>(sc[v / 16])));
                _mm256_storeu_ps(dst + sb * 256 + v, _mm256_mul_ps(ds, _mm256_cvtepi32_ps(qi)));
              }
            }
          }
        }
        return;
      }
      break;
    default: break;
  }
  const QFormat f = qformat(w.type);
  const int64_t a0 = c0 / f.block * f.block, a1 = (c0 + n + f.block - 1) / f.block * f.block;
  alignas(64) uint8_t u[2 * kSpan + 64];
  alignas(64) float S[2 * kSpan / 16], M[2 * kSpan / 32];
  decode_qrow(w.type, row, a0, a1 - a0, u, S, M);
  const __m256i z = _mm256_set1_epi32(f.zero);
  for (int64_t i = 0; i < n; i += 8) {
    const int64_t k = c0 - a0 + i;  // 8 values inside one group (groups are 16 or 32 wide)
    const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(u + k))), z);
    __m256 v = _mm256_mul_ps(_mm256_set1_ps(S[k / f.group]), _mm256_cvtepi32_ps(q));
    if (f.has_min) v = _mm256_add_ps(v, _mm256_set1_ps(M[k / 32]));
    _mm256_storeu_ps(dst + i, v);
  }
}

#endif

// Any type, any ISA: the block-aligned range through dequantize_row, then the wanted part.
void widen_generic(const WeightView& w, int64_t r, int64_t c0, int64_t n, float* dst) {
  const int64_t bs = dequant_block_size(w.type);
  const int64_t a0 = c0 / bs * bs, a1 = (c0 + n + bs - 1) / bs * bs;
  if (a0 == c0 && a1 == c0 + n) return dequantize_row(w.type, w.row(r), c0, n, dst);
  float tmp[2 * kSpan + 256];
  dequantize_row(w.type, w.row(r), a0, a1 - a0, tmp);
  std::memcpy(dst, tmp + (c0 - a0), sizeof(float) * n);
}

}  // namespace

void widen_row(const WeightView& w, int64_t r, int64_t c0, int64_t n, float* dst) {
  for (int64_t done = 0; done < n;) {  // pieces of at most kSpan values (the SIMD paths' limit)
    const int64_t m = std::min(kSpan, n - done);
#ifdef DG_X86
    if (active_isa() >= Isa::kAVX512 && (c0 + done) % 32 == 0 && m % 16 == 0) {
      widen_avx512(w, r, c0 + done, m, dst + done);
    } else if (active_isa() >= Isa::kAVX2 && (c0 + done) % 32 == 0 && m % 16 == 0 && lanes_decode(w.type)) {
      widen_avx2(w, r, c0 + done, m, dst + done);
    } else
#endif
    {
      widen_generic(w, r, c0 + done, m, dst + done);
    }
    done += m;
  }
}

}  // namespace dg

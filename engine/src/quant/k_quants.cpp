// K-quants: Q4_K and Q5_K (256 values = 8 sub-blocks of 32, x = d*sc*q - dmin*m with 6-bit sc/m)
// and Q6_K (16 groups of 16, x = d*sc*(q - 32) with int8 sc). Layouts in blocks.h.
//
// Quantizer (ours, written from the format definitions), per super-block:
//  1. each sub-block gets its own best float scale (and min) by scanning the inverse scale around
//     "range / levels" and refitting by least squares on the resulting codes;
//  2. the sub-block scales are encoded as 6-bit (8-bit for Q6_K) multiples of an fp16 super-scale;
//  3. each sub-block then tries its neighbouring scale codes with the final, stored super-scales
//     and keeps the codes whose decoded values have the least squared error.
// Errors are measured on the exact decode (same float32 operations as dequantize), so what is
// minimised is what a reader sees. Unweighted squared error: the target is the RMS error.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/k_scales.h"
#include "quant/formats.h"
#include "quant/scalars.h"

namespace dg::quant {
namespace {

// ---- step 1: float fits per sub-block ---------------------------------------------------------

// x ~= s * q - m over n values, q in [0, qmax], s >= 0, m >= 0 (the format stores -min >= 0).
struct AffineFit {
  float s = 0, m = 0;
};

AffineFit fit_affine(const float* x, int n, int qmax) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  lo = std::min(lo, 0.0f);  // the offset can only move values down
  AffineFit best{0.0f, -lo};
  if (hi <= lo) return best;
  double best_err = 0;
  for (int i = 0; i < n; ++i) best_err += static_cast<double>(x[i] + best.m) * (x[i] + best.m);
  int q[kQK];
  for (int step = -10; step <= 10; ++step) {
    const float iscale = (static_cast<float>(qmax) + 0.1f * static_cast<float>(step)) / (hi - lo);
    double sq = 0, sx = 0, sqq = 0, sxq = 0;
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(static_cast<int>(std::nearbyint(iscale * (x[i] - lo))), 0, qmax);
      sq += q[i];
      sx += x[i];
      sqq += static_cast<double>(q[i]) * q[i];
      sxq += static_cast<double>(q[i]) * x[i];
    }
    if (sqq <= 0) continue;
    const double det = n * sqq - sq * sq;
    double s = det > 0 ? (n * sxq - sq * sx) / det : 0;
    double b = det > 0 ? (sx - s * sq) / n : 1;  // x ~= s q + b
    if (b > 0) {  // offset must be <= 0 (or all codes equal): fit the scale alone
      b = 0;
      s = sxq / sqq;
    }
    if (s <= 0) continue;
    double err = 0;
    for (int i = 0; i < n; ++i) {
      const double e = s * q[i] + b - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best = {static_cast<float>(s), static_cast<float>(-b)};
    }
  }
  return best;
}

// x ~= s * q over n values, q in [-32, 31] (s may be negative: the extra level is on one side).
float fit_symmetric(const float* x, int n) {
  float amax = 0, vmax = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      vmax = x[i];
    }
  }
  if (amax == 0) return 0.0f;
  float best_s = 0;
  double best_err = 0;
  for (int i = 0; i < n; ++i) best_err += static_cast<double>(x[i]) * x[i];
  for (int side = 0; side < 2; ++side) {
    for (int step = -10; step <= 10; ++step) {
      // side 0: the extreme value maps to -32; side 1: to +31.
      const float levels = (side == 0 ? -32.0f : 31.0f) + 0.1f * static_cast<float>(step) * (side == 0 ? -1 : 1);
      const float iscale = levels / vmax;
      double sqq = 0, sxq = 0;
      int q[16];
      for (int i = 0; i < n; ++i) {
        q[i] = std::clamp(static_cast<int>(std::nearbyint(iscale * x[i])), -32, 31);
        sqq += static_cast<double>(q[i]) * q[i];
        sxq += static_cast<double>(q[i]) * x[i];
      }
      if (sqq <= 0) continue;
      const double s = sxq / sqq;
      double err = 0;
      for (int i = 0; i < n; ++i) {
        const double e = s * q[i] - x[i];
        err += e * e;
      }
      if (err < best_err) {
        best_err = err;
        best_s = static_cast<float>(s);
      }
    }
  }
  return best_s;
}

// ---- steps 2 and 3 for Q4_K / Q5_K ------------------------------------------------------------

// Codes of one 32-value sub-block for the stored scale code sc and min code mc.
double encode_affine_sub(const float* x, float d, float dmin, int sc, int mc, int qmax, uint8_t* q) {
  const float ds = d * static_cast<float>(sc);
  const float dm = dmin * static_cast<float>(mc);
  const float inv = ds > 0 ? 1.0f / ds : 0.0f;
  double err = 0;
  for (int i = 0; i < kQK; ++i) {
    const int v = ds > 0 ? std::clamp(static_cast<int>(std::nearbyint((x[i] + dm) * inv)), 0, qmax) : 0;
    q[i] = static_cast<uint8_t>(v);
    const double e = static_cast<double>(x[i]) - (ds * static_cast<float>(v) - dm);
    err += e * e;
  }
  return err;
}

int code6(float v, float unit) { return unit > 0 ? std::clamp(static_cast<int>(std::nearbyint(v / unit)), 0, 63) : 0; }

// One Q4_K/Q5_K super-block: q[256] codes, sc/m 6-bit codes, fp16 d/dmin.
void quantize_affine_superblock(const float* x, int qmax, uint16_t& d16, uint16_t& dmin16, uint8_t* sc,
                                uint8_t* mc, uint8_t* q) {
  AffineFit fit[8];
  float max_s = 0, max_m = 0;
  for (int j = 0; j < 8; ++j) {
    fit[j] = fit_affine(x + kQK * j, kQK, qmax);
    max_s = std::max(max_s, fit[j].s);
    max_m = std::max(max_m, fit[j].m);
  }
  // A super-scale that underflows fp16 would zero the block: use the smallest subnormal instead.
  d16 = f32_to_half(max_s / 63.0f);
  if (d16 == 0 && max_s > 0) d16 = 1;
  dmin16 = f32_to_half(max_m / 63.0f);
  if (dmin16 == 0 && max_m > 0) dmin16 = 1;
  const float d = half_to_f32(d16), dmin = half_to_f32(dmin16);
  for (int j = 0; j < 8; ++j) {
    const float* xs = x + kQK * j;
    const int sc0 = code6(fit[j].s, d), mc0 = code6(fit[j].m, dmin);
    double best_err = -1;
    uint8_t trial[kQK];
    for (int s = std::max(sc0 - 1, 0); s <= std::min(sc0 + 1, 63); ++s) {
      for (int m = std::max(mc0 - 1, 0); m <= std::min(mc0 + 1, 63); ++m) {
        const double err = encode_affine_sub(xs, d, dmin, s, m, qmax, trial);
        if (best_err < 0 || err < best_err) {
          best_err = err;
          sc[j] = static_cast<uint8_t>(s);
          mc[j] = static_cast<uint8_t>(m);
          std::memcpy(q + kQK * j, trial, kQK);
        }
      }
    }
  }
}

// ---- steps 2 and 3 for Q6_K -----------------------------------------------------------------------

double encode_symmetric_group(const float* x, float d, int sc, int8_t* q) {
  const float ds = d * static_cast<float>(sc);
  const float inv = ds != 0 ? 1.0f / ds : 0.0f;
  double err = 0;
  for (int i = 0; i < 16; ++i) {
    const int v = ds != 0 ? std::clamp(static_cast<int>(std::nearbyint(x[i] * inv)), -32, 31) : 0;
    q[i] = static_cast<int8_t>(v);
    const double e = static_cast<double>(x[i]) - ds * static_cast<float>(v);
    err += e * e;
  }
  return err;
}

}  // namespace

// ---- dequantization ---------------------------------------------------------------------------------

void dequantize_q4_k(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ4_K*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQKK) {
    const float d = half_to_f32(b[k].d), dmin = half_to_f32(b[k].dmin);
    uint8_t sc[8], m[8];
    unpack_scales(b[k].scales, sc, m);
    for (int j = 0; j < 8; ++j) {
      const float ds = d * static_cast<float>(sc[j]), dm = dmin * static_cast<float>(m[j]);
      const uint8_t* qs = b[k].qs + kQK * (j / 2);
      const int shift = 4 * (j & 1);
      for (int l = 0; l < kQK; ++l) dst[kQK * j + l] = ds * static_cast<float>((qs[l] >> shift) & 15) - dm;
    }
  }
}

void dequantize_q5_k(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ5_K*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQKK) {
    const float d = half_to_f32(b[k].d), dmin = half_to_f32(b[k].dmin);
    uint8_t sc[8], m[8];
    unpack_scales(b[k].scales, sc, m);
    for (int j = 0; j < 8; ++j) {
      const float ds = d * static_cast<float>(sc[j]), dm = dmin * static_cast<float>(m[j]);
      const uint8_t* qs = b[k].qs + kQK * (j / 2);
      const int shift = 4 * (j & 1);
      for (int l = 0; l < kQK; ++l) {
        const int q = ((qs[l] >> shift) & 15) | (((b[k].qh[l] >> j) & 1) << 4);
        dst[kQK * j + l] = ds * static_cast<float>(q) - dm;
      }
    }
  }
}

void dequantize_q6_k(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ6_K*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQKK) {
    const float d = half_to_f32(b[k].d);
    for (int f = 0; f < kQKK; ++f) {
      const int h = f / 128, r = f % 128;
      const int lo = (b[k].ql[64 * h + r % 64] >> (4 * (r / 64))) & 15;
      const int hi = (b[k].qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
      const float ds = d * static_cast<float>(b[k].scales[f / 16]);
      dst[f] = ds * static_cast<float>((lo | (hi << 4)) - 32);
    }
  }
}

// ---- quantization ---------------------------------------------------------------------------------

void quantize_q4_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ4_K*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQKK) {
    uint8_t sc[8], m[8], q[kQKK];
    quantize_affine_superblock(src, 15, b[k].d, b[k].dmin, sc, m, q);
    pack_scales(sc, m, b[k].scales);
    for (int j = 0; j < 8; j += 2) {
      for (int l = 0; l < kQK; ++l) {
        b[k].qs[kQK * (j / 2) + l] = static_cast<uint8_t>(q[kQK * j + l] | (q[kQK * (j + 1) + l] << 4));
      }
    }
  }
}

void quantize_q5_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ5_K*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQKK) {
    uint8_t sc[8], m[8], q[kQKK];
    quantize_affine_superblock(src, 31, b[k].d, b[k].dmin, sc, m, q);
    pack_scales(sc, m, b[k].scales);
    std::memset(b[k].qh, 0, sizeof b[k].qh);
    for (int j = 0; j < 8; ++j) {
      for (int l = 0; l < kQK; ++l) b[k].qh[l] = static_cast<uint8_t>(b[k].qh[l] | ((q[kQK * j + l] >> 4) << j));
    }
    for (int j = 0; j < 8; j += 2) {
      for (int l = 0; l < kQK; ++l) {
        b[k].qs[kQK * (j / 2) + l] =
            static_cast<uint8_t>((q[kQK * j + l] & 15) | ((q[kQK * (j + 1) + l] & 15) << 4));
      }
    }
  }
}

// Scale codes and 6-bit values of one Q6_K super-block for the super-scale d (fp16 bits);
// returns the squared error.
static double encode_q6_k_scales(const float* x, const float* s, uint16_t d16, int8_t* scales, int8_t* q) {
  const float d = half_to_f32(d16);
  double total = 0;
  for (int g = 0; g < 16; ++g) {
    const float* xs = x + 16 * g;
    const int sc0 = d != 0 ? std::clamp(static_cast<int>(std::nearbyint(s[g] / d)), -128, 127) : 0;
    double best_err = -1;
    int8_t trial[16];
    for (int sc = std::max(sc0 - 1, -128); sc <= std::min(sc0 + 1, 127); ++sc) {
      const double err = encode_symmetric_group(xs, d, sc, trial);
      if (best_err < 0 || err < best_err) {
        best_err = err;
        scales[g] = static_cast<int8_t>(sc);
        std::memcpy(q + 16 * g, trial, 16);
      }
    }
    total += best_err;
  }
  return total;
}

void quantize_q6_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ6_K*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQKK) {
    float s[16];
    float max_abs = 0, max_signed = 0;
    for (int g = 0; g < 16; ++g) {
      s[g] = fit_symmetric(src + 16 * g, 16);
      if (std::fabs(s[g]) > max_abs) {
        max_abs = std::fabs(s[g]);
        max_signed = s[g];
      }
    }
    // Two super-scales: the largest group scale on code 127, or (sign flipped) on code -128.
    int8_t q[kQKK], q2[kQKK], sc2[16];
    b[k].d = f32_to_half(max_abs / 127.0f);
    if (b[k].d == 0 && max_abs > 0) b[k].d = 1;  // underflow would zero the block
    const double err = encode_q6_k_scales(src, s, b[k].d, b[k].scales, q);
    const uint16_t d2 = f32_to_half(max_signed / -128.0f);
    if (encode_q6_k_scales(src, s, d2, sc2, q2) < err) {
      b[k].d = d2;
      std::memcpy(b[k].scales, sc2, sizeof sc2);
      std::memcpy(q, q2, sizeof q2);
    }
    std::memset(b[k].ql, 0, sizeof b[k].ql);
    std::memset(b[k].qh, 0, sizeof b[k].qh);
    for (int f = 0; f < kQKK; ++f) {
      const int u = q[f] + 32;  // 0..63
      const int h = f / 128, r = f % 128;
      b[k].ql[64 * h + r % 64] = static_cast<uint8_t>(b[k].ql[64 * h + r % 64] | ((u & 15) << (4 * (r / 64))));
      b[k].qh[32 * h + r % 32] = static_cast<uint8_t>(b[k].qh[32 * h + r % 32] | ((u >> 4) << (2 * (r / 32))));
    }
  }
}

}  // namespace dg::quant

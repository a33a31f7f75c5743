// Q4_0, Q4_1, Q5_0, Q5_1: 32 values per block, 4- or 5-bit codes, one fp16 scale (and for the
// _1 variants an fp16 offset). Layouts in blocks.h.
//
// Quantizer: per block, a handful of candidate (scale, offset) pairs are encoded and decoded
// exactly as a reader will, and the one with the least squared error wins. Candidate 0 is
// gguf-py's own quantizer step for step (same float32 operations), so our error per block is
// never above gguf-py's; the others scan scales around it and refit by least squares.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/scalars.h"

namespace dg::quant {
namespace {

// ---- bit packing shared by the four formats ---------------------------------------------

// q[0..32) 4-bit codes -> qs[16]: low nibble q[j], high nibble q[j + 16].
void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
}
void unpack_nibbles(const uint8_t* qs, uint8_t* q) {
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = qs[j] & 0x0f;
    q[j + 16] = qs[j] >> 4;
  }
}
// Fifth bits: bit i of the little-endian u32 qh is bit 4 of q[i].
void pack_high_bits(const uint8_t* q, uint8_t* qh) {
  uint32_t h = 0;
  for (int i = 0; i < kQK; ++i) h |= static_cast<uint32_t>((q[i] >> 4) & 1) << i;
  std::memcpy(qh, &h, 4);
}
void add_high_bits(const uint8_t* qh, uint8_t* q) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  for (int i = 0; i < kQK; ++i) q[i] = static_cast<uint8_t>(q[i] | (((h >> i) & 1) << 4));
}

// ---- symmetric formats (Q4_0, Q5_0): x = d * (q - off), q in [0, 2 off) ------------------

struct SymCode {
  uint16_t d = 0;
  uint8_t q[kQK] = {};
};

double sym_error(const float* x, const SymCode& c, int off) {
  const float d = half_to_f32(c.d);
  double err = 0;
  for (int i = 0; i < kQK; ++i) {
    const double e = static_cast<double>(x[i]) - d * static_cast<float>(c.q[i] - off);
    err += e * e;
  }
  return err;
}

// Codes nearest to x for the stored (fp16) scale d.
SymCode sym_encode(const float* x, float d, int off) {
  SymCode c;
  c.d = f32_to_half(d);
  const float df = half_to_f32(c.d);
  const float id = df != 0.0f ? 1.0f / df : 0.0f;
  for (int i = 0; i < kQK; ++i) {
    const int q = static_cast<int>(std::nearbyint(x[i] * id)) + off;
    c.q[i] = static_cast<uint8_t>(std::clamp(q, 0, 2 * off - 1));
  }
  return c;
}

SymCode sym_quantize(const float* x, int off) {
  // Candidate 0, as gguf-py Q4_0/Q5_0.quantize_blocks: the signed value of largest magnitude
  // (first one on ties) maps to code 0, d = max / -off, q = trunc(x / d + off + 0.5).
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < kQK; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  SymCode best;
  {
    const float d = max / static_cast<float>(-off);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const float bias = static_cast<float>(off) + 0.5f;
    best.d = f32_to_half(d);
    for (int i = 0; i < kQK; ++i) {
      const float t = std::trunc(x[i] * id + bias);
      best.q[i] = static_cast<uint8_t>(std::clamp(static_cast<int>(t), 0, 2 * off - 1));
    }
  }
  if (amax == 0.0f) return best;
  double best_err = sym_error(x, best, off);
  auto consider = [&](const SymCode& c) {
    const double err = sym_error(x, c, off);
    if (err < best_err) {
      best_err = err;
      best = c;
    }
  };
  // The extreme value on the negative (-off) or positive (off - 1) end, slightly shrunk or widened.
  for (int step = -4; step <= 8; ++step) {
    const float levels = static_cast<float>(off) - 0.125f * static_cast<float>(step);
    consider(sym_encode(x, max / -levels, off));
    consider(sym_encode(x, max / (levels - 1.0f), off));
  }
  // One fp16 step away from zero: when d rounds down (coarse subnormal halves) codes clip.
  consider(sym_encode(x, half_to_f32(static_cast<uint16_t>(f32_to_half(max / static_cast<float>(-off)) + 1)), off));
  // Least-squares scale for the best codes so far, then re-encode.
  for (int iter = 0; iter < 2; ++iter) {
    double sxq = 0, sqq = 0;
    for (int i = 0; i < kQK; ++i) {
      const double q = best.q[i] - off;
      sxq += x[i] * q;
      sqq += q * q;
    }
    if (sqq <= 0) break;
    consider(sym_encode(x, static_cast<float>(sxq / sqq), off));
  }
  return best;
}

// ---- offset formats (Q4_1, Q5_1): x = d * q + m, q in [0, qmax] ---------------------------

struct AsymCode {
  uint16_t d = 0, m = 0;
  uint8_t q[kQK] = {};
};

double asym_error(const float* x, const AsymCode& c) {
  const float d = half_to_f32(c.d), m = half_to_f32(c.m);
  double err = 0;
  for (int i = 0; i < kQK; ++i) {
    const double e = static_cast<double>(x[i]) - (d * static_cast<float>(c.q[i]) + m);
    err += e * e;
  }
  return err;
}

AsymCode asym_encode(const float* x, float d, float m, int qmax) {
  AsymCode c;
  c.d = f32_to_half(d);
  c.m = f32_to_half(m);
  const float df = half_to_f32(c.d), mf = half_to_f32(c.m);
  const float id = df != 0.0f ? 1.0f / df : 0.0f;
  for (int i = 0; i < kQK; ++i) {
    const int q = static_cast<int>(std::nearbyint((x[i] - mf) * id));
    c.q[i] = static_cast<uint8_t>(std::clamp(q, 0, qmax));
  }
  return c;
}

AsymCode asym_quantize(const float* x, int qmax) {
  float min = x[0], max = x[0];
  for (int i = 1; i < kQK; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
  }
  // Candidate 0, as gguf-py Q4_1/Q5_1.quantize_blocks.
  AsymCode best;
  {
    const float d = (max - min) / static_cast<float>(qmax);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    best.d = f32_to_half(d);
    best.m = f32_to_half(min);
    for (int i = 0; i < kQK; ++i) {
      const float t = std::trunc((x[i] - min) * id + 0.5f);
      best.q[i] = static_cast<uint8_t>(std::clamp(static_cast<int>(t), 0, qmax));
    }
  }
  if (max == min) return best;
  double best_err = asym_error(x, best);
  auto consider = [&](const AsymCode& c) {
    const double err = asym_error(x, c);
    if (err < best_err) {
      best_err = err;
      best = c;
    }
  };
  for (int step = -4; step <= 4; ++step) {
    const float levels = static_cast<float>(qmax) + 0.25f * static_cast<float>(step);
    consider(asym_encode(x, (max - min) / levels, min, qmax));
  }
  // Least-squares (d, m) for the best codes, then re-encode.
  for (int iter = 0; iter < 2; ++iter) {
    double sq = 0, sx = 0, sqq = 0, sxq = 0;
    for (int i = 0; i < kQK; ++i) {
      sq += best.q[i];
      sx += x[i];
      sqq += static_cast<double>(best.q[i]) * best.q[i];
      sxq += static_cast<double>(best.q[i]) * x[i];
    }
    const double det = kQK * sqq - sq * sq;
    if (det <= 0) break;
    const double d = (kQK * sxq - sq * sx) / det;
    const double m = (sx - d * sq) / kQK;
    consider(asym_encode(x, static_cast<float>(d), static_cast<float>(m), qmax));
  }
  return best;
}

}  // namespace

// ---- dequantization (gguf-py order: float(d) * float(q - off), float(d) * q + float(m)) -----

void dequantize_q4_0(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQK) {
    const float d = half_to_f32(b[k].d);
    uint8_t q[kQK];
    unpack_nibbles(b[k].qs, q);
    for (int i = 0; i < kQK; ++i) dst[i] = d * static_cast<float>(q[i] - 8);
  }
}

void dequantize_q4_1(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQK) {
    const float d = half_to_f32(b[k].d), m = half_to_f32(b[k].m);
    uint8_t q[kQK];
    unpack_nibbles(b[k].qs, q);
    for (int i = 0; i < kQK; ++i) dst[i] = d * static_cast<float>(q[i]) + m;
  }
}

void dequantize_q5_0(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQK) {
    const float d = half_to_f32(b[k].d);
    uint8_t q[kQK];
    unpack_nibbles(b[k].qs, q);
    add_high_bits(b[k].qh, q);
    for (int i = 0; i < kQK; ++i) dst[i] = d * static_cast<float>(q[i] - 16);
  }
}

void dequantize_q5_1(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQK) {
    const float d = half_to_f32(b[k].d), m = half_to_f32(b[k].m);
    uint8_t q[kQK];
    unpack_nibbles(b[k].qs, q);
    add_high_bits(b[k].qh, q);
    for (int i = 0; i < kQK; ++i) dst[i] = d * static_cast<float>(q[i]) + m;
  }
}

// ---- quantization ------------------------------------------------------------------------

void quantize_q4_0(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQK) {
    const SymCode c = sym_quantize(src, 8);
    b[k].d = c.d;
    pack_nibbles(c.q, b[k].qs);
  }
}

void quantize_q4_1(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQK) {
    const AsymCode c = asym_quantize(src, 15);
    b[k].d = c.d;
    b[k].m = c.m;
    pack_nibbles(c.q, b[k].qs);
  }
}

void quantize_q5_0(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ5_0*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQK) {
    const SymCode c = sym_quantize(src, 16);
    b[k].d = c.d;
    pack_high_bits(c.q, b[k].qh);
    pack_nibbles(c.q, b[k].qs);
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ5_1*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQK) {
    const AsymCode c = asym_quantize(src, 31);
    b[k].d = c.d;
    b[k].m = c.m;
    pack_high_bits(c.q, b[k].qh);
    pack_nibbles(c.q, b[k].qs);
  }
}

}  // namespace dg::quant

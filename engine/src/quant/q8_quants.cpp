// 8-bit formats: Q8_0 (weights, 32 values, fp16 scale), Q8_1 (activations for the legacy
// dot products: fp32 scale plus d * sum), Q8_K (activations for the K-quant dot products: 256
// values, fp32 scale, sums of 16). Layouts in blocks.h.
#include <algorithm>
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/scalars.h"

namespace dg::quant {
namespace {

float abs_max(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

struct Q8Code {
  uint16_t d = 0;
  int8_t q[kQK] = {};
};

double q8_error(const float* x, const Q8Code& c) {
  const float d = half_to_f32(c.d);
  double err = 0;
  for (int i = 0; i < kQK; ++i) {
    const double e = static_cast<double>(x[i]) - static_cast<float>(c.q[i]) * d;
    err += e * e;
  }
  return err;
}

Q8Code q8_encode(const float* x, float d) {
  Q8Code c;
  c.d = f32_to_half(d);
  const float df = half_to_f32(c.d);
  const float id = df != 0.0f ? 1.0f / df : 0.0f;
  for (int i = 0; i < kQK; ++i) {
    c.q[i] = static_cast<int8_t>(std::clamp(static_cast<int>(std::nearbyint(x[i] * id)), -127, 127));
  }
  return c;
}

// Candidate 0 is gguf-py's Q8_0 (= ggml's reference): d = amax / 127, q = round-half-away(x / d)
// computed with the unrounded d. The others re-encode for the stored fp16 d and refit d.
Q8Code q8_0_quantize(const float* x) {
  const float amax = abs_max(x, kQK);
  Q8Code best;
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  best.d = f32_to_half(d);
  for (int i = 0; i < kQK; ++i) best.q[i] = static_cast<int8_t>(std::round(x[i] * id));
  if (amax == 0.0f) return best;
  double best_err = q8_error(x, best);
  auto consider = [&](const Q8Code& c) {
    const double err = q8_error(x, c);
    if (err < best_err) {
      best_err = err;
      best = c;
    }
  };
  for (int step = 0; step <= 4; ++step) consider(q8_encode(x, amax / (127.0f - 0.25f * static_cast<float>(step))));
  // One fp16 step up: when d rounds down (coarse subnormal halves) the largest codes clip.
  consider(q8_encode(x, half_to_f32(static_cast<uint16_t>(f32_to_half(amax / 127.0f) + 1))));
  double sxq = 0, sqq = 0;
  for (int i = 0; i < kQK; ++i) {
    sxq += static_cast<double>(x[i]) * best.q[i];
    sqq += static_cast<double>(best.q[i]) * best.q[i];
  }
  if (sqq > 0) consider(q8_encode(x, static_cast<float>(sxq / sqq)));
  return best;
}

}  // namespace

void dequantize_q8_0(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQK) {
    const float d = half_to_f32(b[k].d);
    for (int i = 0; i < kQK; ++i) dst[i] = static_cast<float>(b[k].qs[i]) * d;
  }
}

void dequantize_q8_1(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ8_1*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQK) {
    for (int i = 0; i < kQK; ++i) dst[i] = static_cast<float>(b[k].qs[i]) * b[k].d;
  }
}

void dequantize_q8_k(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockQ8_K*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQKK) {
    for (int i = 0; i < kQKK; ++i) dst[i] = static_cast<float>(b[k].qs[i]) * b[k].d;
  }
}

void quantize_q8_0(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQK) {
    const Q8Code c = q8_0_quantize(src);
    b[k].d = c.d;
    std::copy(c.q, c.q + kQK, b[k].qs);
  }
}

// Activations: one pass, d = amax / 127, round half away from zero (fast, not searched).
void quantize_q8_1(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ8_1*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQK) {
    const float d = abs_max(src, kQK) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int i = 0; i < kQK; ++i) {
      b[k].qs[i] = static_cast<int8_t>(std::round(src[i] * id));
      sum += b[k].qs[i];
    }
    b[k].d = d;
    b[k].s = d * static_cast<float>(sum);
  }
}

void quantize_q8_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions&) {
  auto* b = static_cast<BlockQ8_K*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQKK) {
    const float d = abs_max(src, kQKK) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < kQKK; ++i) b[k].qs[i] = static_cast<int8_t>(std::round(src[i] * id));
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += b[k].qs[16 * g + i];
      b[k].bsums[g] = static_cast<int16_t>(sum);
    }
    b[k].d = d;
  }
}

}  // namespace dg::quant

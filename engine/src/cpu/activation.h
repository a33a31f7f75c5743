// Pointwise functions shared by the MLPs, the router, attention and the LM head.
#pragma once

#include <cmath>
#include <cstdint>

#include "cpu/cpu_features.h"
#include "cpu/vecmath.h"
#include "util/thread_pool.h"

namespace dg {

// gelu_pytorch_tanh: 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))), the order torch uses.
inline float gelu_tanh(float x) {
  constexpr float kBeta = 0.7978845608028654f;  // sqrt(2/pi)
  constexpr float kKappa = 0.044715f;
  const float inner = kBeta * (x + kKappa * (x * x * x));
  return 0.5f * x * (1.0f + std::tanh(inner));
}

// out[i] = gelu_tanh(gate[i]) * up[i]
inline void gelu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gelu_tanh(gate[i]) * up[i];
}

// gate[t] = gelu_tanh(gate[t]) * up[t] for T rows of F values, rows split over the pool; the
// fast path's vector exp, else libm.
inline void gelu_mul_rows(ThreadPool& pool, float* gate, const float* up, int64_t T, int64_t F) {
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    if (fast_path()) gelu_mul_fast(gate + b * F, up + b * F, gate + b * F, (e - b) * F);
    else gelu_mul(gate + b * F, up + b * F, gate + b * F, (e - b) * F);
  });
}

// x[t] += y[t] for T rows of H values.
inline void add_rows(ThreadPool& pool, float* x, const float* y, int64_t T, int64_t H) {
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b * H; i < e * H; ++i) x[i] += y[i];
  });
}

// x = cap * tanh(x / cap) (the final logit softcap).
inline void softcap(float* x, int64_t n, float cap) {
  if (fast_path()) return softcap_fast(x, n, cap);
  for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i] / cap) * cap;
}

// In-place fp32 softmax of one row: exp(x - max) scaled by 1/sum (torch's CPU softmax).
inline void softmax_row(float* x, int64_t n) {
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) m = x[i] > m ? x[i] : m;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// dst = softmax(src): the fast path's vector exp, else softmax_row on a copy.
inline void softmax_row_to(const float* src, float* dst, int64_t n) {
  if (fast_path()) return softmax_fast(src, dst, n);
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  softmax_row(dst, n);
}
}  // namespace dg

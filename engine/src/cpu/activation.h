// Pointwise functions shared by the MLPs, the router, attention and the LM head.
#pragma once

#include <cmath>
#include <cstdint>

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

}  // namespace dg

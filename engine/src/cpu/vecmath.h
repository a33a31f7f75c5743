// Vectorised exp and the functions built on it, for the fast path (cpu_features.h). The exact
// path keeps libm (activation.h).
//
// exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, Cephes' degree-5 polynomial
// (exp(r) = 1 + r + r^2 P(r)), times 2^n built in the exponent bits. Inputs below -87.3 (and
// -inf) give 0, inputs above 88.3 are clamped there (never inf). Error about 1 ulp.
// Every ISA path runs the same IEEE operations in the same order, and the sums use 16 fixed
// partial sums reduced in a fixed tree, so results are bit-identical across ISA paths.
#pragma once

#include <cstdint>

namespace dg {

// The scalar definition of the vector exp (the value every path gives).
float exp_vec_def(float x);

// out[i] = gate[i] * sigmoid(2u) * up[i] with u = sqrt(2/pi) (g + 0.044715 g^3): gelu_tanh(g) * up,
// written as g / (1 + exp(-2u)) (one exp, no tanh cancellation). out may alias gate.
void gelu_mul_fast(const float* gate, const float* up, float* out, int64_t n);

// x[i] = cap * tanh(x[i] / cap), tanh(y) = 1 - 2 / (exp(2y) + 1) with |y| clamped to 9 (where
// tanh is 1 in fp32).
void softcap_fast(float* x, int64_t n, float cap);

// dst[i] = exp(src[i] - max) / sum (dst may alias src); -inf entries give 0.
void softmax_fast(const float* src, float* dst, int64_t n);

// x[i] = x[i] / t in place; returns the maximum and sets *argmax to its first index.
float scale_max_argmax(float* x, int64_t n, float t, int64_t* argmax);

// The sums a row's softmax needs, with e[i] = exp(x[i] - m) written to e:
//   *sum = sum e[i],  *sum_ex = sum e[i] * (x[i] - m)  (for the entropy log(sum) - sum_ex / sum),
//   block_sums[b] = sum of e over [b * block, (b + 1) * block)   (block a multiple of 16).
void exp_sums(const float* x, int64_t n, float m, float* e, float* sum, float* sum_ex, float* block_sums,
              int64_t block);

}  // namespace dg

// The int8 GEMM of the fast path: quantized weights (qpanel.h) x 8-bit quantized activations
// (q8_acts.h), integer dot products with AVX512-VNNI / AVX-VNNI, an AVX2 emulation and a scalar
// fallback. Packed weights (qpack.h) on AVX512-VNNI go through qgemm_direct.h's kernels, which form
// the same integers and float steps (bit-identical results).
//
// For output (t, o) and each weight group g (G values) inside activation block b (32 values):
//   i   = sum_{k in g} (q[t][k] + 128) * c[k][o]  +  C[g][o]  =  sum_{k in g} q[t][k] c[k][o]   (exact, int32)
//   acc = fma(float(i), S[g][o] * d[t][b], acc)
//   acc = fma(M[b][o], d[t][b] * sum_{k in b} q[t][k], acc)                    (formats with a min)
// in increasing k, starting from y[t, o] (accumulate) or 0; then acc * w.out_scale when that is
// not 1 (NVFP4's second-level scale). Every ISA path performs exactly these float operations in
// this order, so results are bit-identical across ISA paths and thread counts (threads split
// outputs, never the reduction).
//
// Accuracy against the float GEMM on the same weights: only the activations are rounded (to 8
// bits per value, relative to their 32-block's largest magnitude); the weights are used exactly.
#pragma once

#include <cstdint>

#include "cpu/q8_acts.h"
#include "cpu/weight_view.h"

namespace dg {

// Whether the int8 kernels read weight type t (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K,
// NVFP4).
bool qgemm_supported(GGMLType t);

// y[t, o] (+)= sum_k W[o, k] * a[t, k]  for t < a.n_rows, o in [o0, o1)   (a.K == W.n_in)
// Single-threaded; callers split [o0, o1) (in multiples of kQNR = 32 for balance).
void qgemm(const WeightView& w, int64_t o0, int64_t o1, const QuantActs& a, float* y, int64_t ldy, bool accumulate);

// The same kernels on a panel the caller made (qpanel.h's layout and float steps: codes c, S, C,
// M when f.has_min): y[t, o] (+)= sum over values [k0, k0 + kc) of a (k0, kc multiples of 32,
// kc <= kQKC) of the panel's outputs o < ncols. Single-threaded.
struct QPanel;
struct QFormat;
void qgemm_panel(const QFormat& f, const QPanel& p, int64_t ncols, const QuantActs& a, int64_t k0, int64_t kc, float* y,
                 int64_t ldy, bool accumulate);

}  // namespace dg

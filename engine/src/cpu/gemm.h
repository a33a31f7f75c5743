// The fast fp32 GEMM behind every dense projection, the LM head, the soft embedding, the
// experts and attention: weights (F32/F16/BF16/Q8_0) are widened to fp32 into packed panels of
// kGemmNR outputs x kGemmKC reduction steps, and a register-tiled micro-kernel (AVX-512: 12 rows
// x 32 outputs; AVX2: 6 x 16; scalar fallback) runs over the activation rows.
//
// Summation order, the same on every ISA path and for any split of the outputs:
//   c = accumulate ? y[t, o] : 0;  for k = 0, 1, ..., K-1:  c = fma(a[t, k], b[k, o], c)
// in fp64 (default, DIFFGEMMA_KERNELS=exact: products exact, one rounding to fp32 at the end,
// the accuracy class of the reference kernels) or in fp32 (DIFFGEMMA_KERNELS=fast32: about 2x
// the rate, relative error about sqrt(K) * 2^-24). Results are bit-identical across ISA paths
// and thread counts (threads split outputs, never the reduction).
#pragma once

#include <cstdint>

#include "cpu/weight_view.h"

namespace dg {

constexpr int64_t kGemmNR = 32;   // outputs per packed panel
constexpr int64_t kGemmKC = 256;  // reduction steps per packed panel

// Types the packers read: gemm_wt takes every type dequantize_row reads (F32/F16/BF16 and Q8_0
// widen in SIMD, the other block types through dequantize_row); gemm_w needs blocks that divide
// the 32-column panels (not the 256-element K-quants).
bool gemm_supported(GGMLType t);
bool gemm_w_supported(GGMLType t);

// y[t, o] (+)= sum_i W[o, i] * x[t, i]  for t < n_rows, o in [o0, o1)   (nn.functional.linear)
// x: [n_rows, ldx >= W.n_in]; y: [n_rows, ldy]. Single-threaded; callers split [o0, o1).
void gemm_wt(const WeightView& w, int64_t o0, int64_t o1, const float* x, int64_t ldx, int64_t n_rows,
             float* y, int64_t ldy, bool accumulate);

// y[t, j] (+)= sum_r p[t, r] * W[r, j]  for t < n_rows, j in [j0, j1), r < W.n_out  (p @ W)
// p: [n_rows, ldp >= W.n_out]; y: [n_rows, ldy]. W's type passes gemm_w_supported; j0 and j1 are
// multiples of its block size or j1 = W.n_in. Single-threaded.
void gemm_w(const WeightView& w, int64_t j0, int64_t j1, const float* p, int64_t ldp, int64_t n_rows, float* y,
            int64_t ldy, bool accumulate);

// y[t, j] (+)= sum_r p1[t, r] * W1[r, j] + sum_r p2[t, r] * W2[r, j]: one reduction over two
// segments (attention's P @ V over cached ++ fresh values), in that order. p2 may be null.
void gemm_w2(const WeightView& w1, const float* p1, int64_t ldp1, const WeightView& w2, const float* p2, int64_t ldp2,
             int64_t j0, int64_t j1, int64_t n_rows, float* y, int64_t ldy, bool accumulate);

}  // namespace dg

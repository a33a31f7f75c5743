// The fast path's soft embedding on the int8 kernels (qgemm.h):
//   y[t, j] = sum_r p[t, r] * W[r, j]                       (softmax(sc_logits) @ E)
// with p quantized like every int8 input (q8_acts.h: 8 bits per value, one scale per 32 values
// of a row, here 32 vocabulary entries) and W's columns requantized for it: per column j and
// block of 32 rows b,
//   s = amax_{r in b} |W[r, j]| / 127,  c[r, j] = round_half_even(W[r, j] * (1 / s))   (0 if s = 0)
// (W as dequantize gives it, rows read through widen_row). The panels are qpanel.h's (Q8_0-like:
// groups of 32, no zero point, no min) and go through qgemm_panel, so the products, their
// order (one fp32 chain per output, r increasing) and the result are the same on every ISA path
// and for every thread count. Unlike the other int8 products the weights are rounded too (W is
// stored along j, the sum runs along r): bounds in tests/test_kernel_bounds.py, the effect on
// the logits in BENCHMARKS.md.
#pragma once

#include <cstdint>

#include "cpu/q8_acts.h"
#include "cpu/weight_view.h"

namespace dg {

// Whether soft_embed_q8 takes W (a quantized type the int8 kernels read, rows a multiple of 32
// and columns a multiple of 32).
bool soft_embed_q8_applies(const WeightView& w);

// Columns [j0, j1) of y (multiples of 32, or j1 = W.n_in) for every row of p (p.K = W.n_out).
// Single-threaded; callers split the columns.
void soft_embed_q8(const WeightView& w, int64_t j0, int64_t j1, const QuantActs& p, float* y, int64_t ldy);

}  // namespace dg

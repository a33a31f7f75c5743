// The fast path's soft embedding in bfloat16 dot products (AVX512-BF16 vdpbf16ps, at twice the
// fp32 FMA rate), for a quantized embedding whose vocabulary is not a multiple of 32 (otherwise
// soft_embed_q8.h's int8 kernels run it):
//   y[t, j] = sum_r p[t, r] * W[r, j]                       (softmax(sc_logits) @ E)
// p comes in bfloat16; each W value is widened to fp32 exactly (as dequantize gives it) and
// rounded to bfloat16 (nearest even). One fp32 accumulation chain per output over r in
// increasing pairs, so results are thread-count invariant. Only on Isa::kAVX512BF16: other ISA
// paths run the fp32 GEMM of gemm.h (more precise; not bit-identical to this one).
#pragma once

#include <cstdint>

#include "cpu/weight_view.h"

namespace dg {

// Whether the active ISA has the bf16 dot products.
bool bf16_gemm_available();

// j0, j1: multiples of 32 (or j1 = W.n_in, a multiple of 32); p: [n_rows, ldp] bfloat16 bits,
// ldp even; y: [n_rows, ldy]. Single-threaded; callers split [j0, j1).
void gemm_w_bf16(const WeightView& w, int64_t j0, int64_t j1, const uint16_t* p, int64_t ldp, int64_t n_rows,
                 float* y, int64_t ldy);

// dst[i] = bfloat16(src[i]), nearest even (n a multiple of 16 or not).
void to_bf16(const float* src, uint16_t* dst, int64_t n);

}  // namespace dg

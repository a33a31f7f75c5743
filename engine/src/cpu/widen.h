// One weight row's values in fp32, exactly as dequantize gives them (without the NVFP4 second-level
// scale): the soft embedding's panels and the top-k self-conditioning read E's rows through it.
#pragma once

#include <cstdint>

#include "cpu/weight_view.h"

namespace dg {

constexpr int64_t kWidenSpan = 256;  // values the SIMD paths decode at once

// dst[0..n) = values [c0, c0 + n) of row r of w. Any type the forward pass reads; AVX-512 and AVX2
// decode Q8_0, F16, BF16, Q6_K and the other block formats in lanes where c0 is a multiple of 32.
void widen_row(const WeightView& w, int64_t r, int64_t c0, int64_t n, float* dst);

}  // namespace dg

// y[i] += x[i] * a, rounded twice (the product, then the sum; never fused), vectorised for the
// CPU at hand: the same IEEE operations per element on every ISA path, so results are
// bit-identical to the scalar loop (the MoE's weighted sum of its experts' outputs).
#pragma once

#include <cstdint>

namespace dg {

void axpy(float* y, const float* x, float a, int64_t n);

}  // namespace dg

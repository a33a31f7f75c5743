// The int8 kernels for packed weights (qpack.h) on AVX512-VNNI, reading the codes where packing
// put them instead of widening each panel into a staging buffer first: the weights become the
// unsigned operand of vpdpbusd (their codes u, as stored or two nibble masks away) and the
// activations the signed one (q8_acts.h's q and block sums). For output (t, o), block b:
//   i   = sum_{k in b} q[t][k] * u[k][o]  -  Z * sum_{k in b} q[t][k]  =  sum_{k in b} q[t][k] c[k][o]
// the same integer qgemm.h's kernels form from q + 128 and C, followed by the same float steps in
// the same order, so results are bit-identical to theirs (and thus to every ISA path). (The 4-bit
// formats leave the high nibbles in place, 16 u: the integers of outputs 16..31 are 16 i, their
// scales S / 16, which rounds the same.)
// Formats: the nibble ones, Q4_0, Q5_0, Q4_K (all with 32-value groups). Packed Q8_0 keeps the
// staged path: read in place (codes xor 0x80 per row tile) its experts ran 25 % slower than
// unpacked into L1 once per panel chunk.
#pragma once

#include <cstdint>

#include "cpu/q8_acts.h"
#include "cpu/qpanel.h"
#include "cpu/weight_view.h"

namespace dg {

// Whether qgemm_direct_chunk reads w: packed, a format above, the active ISA AVX512-VNNI (and for
// Q5_0, q5_0_direct(): cpu_features.h).
bool qgemm_direct_applies(const WeightView& w);

// y[t, c0 + o] (+)= the products of values [k0, k0 + kc) of panel c0 (o < 32) for every row of a,
// with the panel's scales p.S / p.M already unpacked (unpack_qscales). kc <= 1024, k0 a multiple
// of the format's block. Accumulates when acc; pf / pf_lines: bytes fetched into L2 meanwhile.
void qgemm_direct_chunk(const WeightView& w, int64_t c0, int64_t k0, int64_t kc, const QuantActs& a, const QPanel& p,
                        float* y, int64_t ldy, bool acc, const uint8_t* pf, int64_t pf_lines);

}  // namespace dg

// Weight panels of the int8 kernels (qgemm.h): kQNR = 32 weight rows (outputs) x kc values of a
// quantized matrix, decoded once per pass and reused by every activation row.
//
// Every supported block format is written as signed 8-bit codes c = u - Z (u the format's unsigned
// code, Z its zero point) with per-group scales S and, for formats with a min, per-32 offsets M:
//   w[o, k] = S[k / G][o] * c[k][o] + M[k / 32][o]                   (exactly the stored value)
// plus, per group, C[g][o] = -128 * sum of the group's codes: the activations arrive as q + 128
// (q8_acts.h), and C takes the 128 back out of their integer dot product.
//   format   G   Z    u                      S                  M
//   Q8_0    32  128   q + 128                d                  -
//   Q4_0    32    8   q (4-bit)              d                  -
//   Q5_0    32   16   q (5-bit)              d                  -
//   Q4_1    32    0   q (4-bit)              d                  m
//   Q5_1    32    0   q (5-bit)              d                  m
//   Q4_K    32    0   q (4-bit)              d * sc[j]          -(dmin * m[j])
//   Q5_K    32    0   q (5-bit)              d * sc[j]          -(dmin * m[j])
//   Q6_K    16   32   q (6-bit)              d * sc[g]          -
//   NVFP4   16   12   2 * E2M1 + 12          ue4m3(d[s])        -       (times the tensor's .scale)
// The products d * sc are the fp32 values the exact decoders compute, so S*(u-Z)+M is the stored
// weight exactly (without the decoders' last rounding).
//
// Layout (the VNNI order: one 512-bit load holds 4 consecutive values of 16 outputs):
//   c[kc/4][kQNR][4]   bytes 4o..4o+3 of row i are the codes of values 4i..4i+3 of output o
//   S[kc/G][kQNR]      fp32
//   M[kc/32][kQNR]     fp32 (formats with a min only)
//   C[kc/G][kQNR]      int32
#pragma once

#include <cstdint>

#include "cpu/weight_view.h"

namespace dg {

constexpr int64_t kQNR = 32;    // outputs per panel
constexpr int64_t kQKC = 4096;  // most values per panel (a multiple of every block size)

struct QFormat {
  int group = 32;        // values per scale (16 or 32)
  int zero = 0;          // Z
  bool has_min = false;  // M present
  int block = 32;        // values per storage block (32, 64 or 256)
  int block_bytes = 34;  // bytes per storage block
  int code_max = 128;    // the largest |c| = |u - Z| (the AVX2 kernels' int16 headroom)
};

// Whether the int8 kernels read type t, and how.
bool qformat_supported(GGMLType t);
QFormat qformat(GGMLType t);

struct QPanel {
  int8_t* c;   // [kQKC/4][kQNR][4] (plus 16 rows of room for a 64-value overrun)
  float* S;    // [kQKC/16][kQNR]
  float* M;    // [kQKC/32][kQNR]
  int32_t* C;  // [kQKC/16][kQNR]
};

// Decodes rows [c0, c0 + n) (n <= kQNR) and values [k0, k0 + kc) of w into panel p (kc <= kQKC,
// k0 and kc multiples of the format's block). Rows n..kQNR-1 get codes, S, M and C of 0. Single-threaded;
// uses a per-thread staging buffer. The ISA path is the active one; all give the same panel.
void decode_qpanel(const WeightView& w, int64_t c0, int64_t n, int64_t k0, int64_t kc, const QPanel& p);

// One row's values [k0, k0 + kc) as codes u[kc] (row-major), scales S[kc / G] and offsets
// M[kc / 32] (formats with a min); kc <= kQKC. w[k] = S[k / G] * (u[k] - Z) + M[k / 32].
void decode_qrow(GGMLType t, const uint8_t* row, int64_t k0, int64_t kc, uint8_t* u, float* S, float* M);

}  // namespace dg

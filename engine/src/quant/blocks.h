// GGML block layouts, byte-exact as they lie in GGUF files (all little-endian, no padding).
// A row of n values is n / block_size consecutive blocks. "fp16" fields are IEEE half bits.
// Dequantized value formulas are written next to each struct; the code evaluates them in the
// same float32 operation order as gguf-py 0.19.0, which makes the results bit-identical.
#pragma once

#include <cstdint>

namespace dg::quant {

constexpr int kQK = 32;    // values per legacy block (Q4_0, Q5_0, Q5_1, Q8_0, Q8_1)
constexpr int kQKK = 256;  // values per K-quant super-block (Q4_K, Q5_K, Q6_K, Q8_K)
constexpr int kQKNV = 64;  // values per NVFP4 block (4 sub-blocks of 16)

// x[i] = d * (q[i] - 8); q[i] = 4-bit code.
struct BlockQ4_0 {
  uint16_t d;              // fp16 scale
  uint8_t qs[kQK / 2];     // qs[j]: low nibble = q[j], high nibble = q[j + 16]
};

// x[i] = d * q[i] + m; q[i] = 4-bit code.
struct BlockQ4_1 {
  uint16_t d;              // fp16 scale
  uint16_t m;              // fp16 offset (the block minimum)
  uint8_t qs[kQK / 2];     // as Q4_0
};

// x[i] = d * (q[i] - 16); q[i] = 5-bit code.
struct BlockQ5_0 {
  uint16_t d;              // fp16 scale
  uint8_t qh[4];           // bit i of this little-endian u32 = bit 4 of q[i]
  uint8_t qs[kQK / 2];     // low 4 bits: low nibble = q[j], high nibble = q[j + 16]
};

// x[i] = d * q[i] + m; q[i] = 5-bit code.
struct BlockQ5_1 {
  uint16_t d;              // fp16 scale
  uint16_t m;              // fp16 offset
  uint8_t qh[4];           // as Q5_0
  uint8_t qs[kQK / 2];     // as Q5_0
};

// x[i] = d * q[i].
struct BlockQ8_0 {
  uint16_t d;              // fp16 scale
  int8_t qs[kQK];
};

// x[i] = d * q[i]; s caches d * sum(q) for the dot-product kernels (activations only, never in
// files). 40 bytes with fp32 d and s, the size gguf-py 0.19.0 and our type table give Q8_1 (today's
// ggml keeps a 36-byte fp16 variant in memory; the two never meet in a file).
struct BlockQ8_1 {
  float d;                 // scale
  float s;                 // d * sum(qs)
  int8_t qs[kQK];
};

// Q4_K / Q5_K share the 12-byte packing of eight 6-bit scales sc[j] and mins m[j]:
//   bytes 0..3:  sc[j] (bits 0..5) | sc[j+4] bits 4..5 (bits 6..7)      j = 0..3
//   bytes 4..7:  m[j]  (bits 0..5) | m[j+4]  bits 4..5 (bits 6..7)
//   bytes 8..11: sc[j+4] bits 0..3 (low nibble) | m[j+4] bits 0..3 (high nibble)
constexpr int kKScaleBytes = 12;

// Sub-block j (32 values, j = 0..7): x[32j + l] = (d * sc[j]) * q - (dmin * m[j]), q 4-bit.
struct BlockQ4_K {
  uint16_t d;                   // fp16 super-scale of the sub-block scales
  uint16_t dmin;                // fp16 super-scale of the sub-block mins
  uint8_t scales[kKScaleBytes]; // packed 6-bit sc[8], m[8] (above)
  uint8_t qs[kQKK / 2];         // value 32j + l: nibble (j & 1) of qs[32 * (j / 2) + l]
};

// As Q4_K with 5-bit q: the fifth bit of value 32j + l is bit j of qh[l].
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleBytes];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};

// 16 groups of 16 values: x[f] = (d * scales[f / 16]) * (q - 32), q 6-bit. With h = f / 128,
// r = f % 128: low 4 bits = nibble (r / 64) of ql[64h + r % 64], high 2 bits =
// (qh[32h + r % 32] >> 2 * (r / 32)) & 3.
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];     // signed group scales
  uint16_t d;                   // fp16 super-scale
};

// x[i] = d * q[i] with an fp32 scale (activations of the K-quant dot products).
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];     // sum of each group of 16 q
};

// Four sub-blocks s of 16 values: x[16s + j] = kvalue[code] * (0.5 * E4M3(d[s])) where kvalue is
// 2 x E2M1 (ggml's doubled table), i.e. E2M1[code] * E4M3(d[s]). The per-tensor second-level
// scale lives outside the block (a `.scale` tensor) and is applied by the caller.
struct BlockNVFP4 {
  uint8_t d[4];                 // UE4M3 scale bytes (plain E4M3 bits, bit 7 clear)
  uint8_t qs[kQKNV / 2];        // sub-block s: qs[8s + j] = code(16s + j) | code(16s + j + 8) << 4
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20, "legacy 4-bit blocks");
static_assert(sizeof(BlockQ5_0) == 22 && sizeof(BlockQ5_1) == 24, "legacy 5-bit blocks");
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 40, "8-bit blocks");
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ5_K) == 176, "K-quant blocks");
static_assert(sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292, "K-quant blocks");
static_assert(sizeof(BlockNVFP4) == 36, "NVFP4 block");

}  // namespace dg::quant

// Row dequantization of weight types to fp32: the reference path every matmul and lookup goes
// through. Values are exactly what gguf-py's dequantize produces (fp16 scale widened, times q).
#pragma once

#include <cstdint>

#include "diffgemma/ggml_type.h"

namespace dg {

// Types these kernels read: F32, F16, BF16, Q8_0.
bool row_dequant_supported(GGMLType t);

// Elements per block of a supported type (32 for Q8_0, 1 for plain types).
int64_t dequant_block_size(GGMLType t);

// Bytes taken by n elements (n a multiple of the block size).
uint64_t dequant_row_bytes(GGMLType t, int64_t n);

// dst[0..n) = elements [first, first+n) of the row starting at `row`. `first` and `n` must be
// multiples of the block size (n may end at the row's end).
void dequantize_row(GGMLType t, const uint8_t* row, int64_t first, int64_t n, float* dst);

float fp16_to_fp32(uint16_t h);
inline float bf16_to_fp32(uint16_t b) {
  union {
    uint32_t u;
    float f;
  } v{static_cast<uint32_t>(b) << 16};
  return v.f;
}

}  // namespace dg

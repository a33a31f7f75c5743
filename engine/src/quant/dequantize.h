// Row dequantization of weights to fp32: the reference path every matmul and lookup goes
// through. The values are those of the block codecs (quant.h), i.e. exactly what gguf-py's
// dequantize produces.
#pragma once

#include <cstdint>
#include <string>

#include "diffgemma/ggml_type.h"

namespace dg {

// Weight types the forward pass reads: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
// Q6_K, NVFP4. NVFP4 rows decode without their second-level `.scale` (as gguf-py does); the
// loader puts it in WeightView::out_scale and the kernels multiply the products by it.
bool row_dequant_supported(GGMLType t);

// The names of the types above, for error messages: "F32, F16, ...".
std::string row_dequant_supported_names();

// Elements per block of a type (32 for Q8_0, 256 for K-quants, 1 for plain types).
int64_t dequant_block_size(GGMLType t);

// Bytes taken by n elements (n a multiple of the block size).
uint64_t dequant_row_bytes(GGMLType t, int64_t n);

// dst[0..n) = elements [first, first+n) of the row starting at `row`. `first` and `n` must be
// multiples of the block size.
void dequantize_row(GGMLType t, const uint8_t* row, int64_t first, int64_t n, float* dst);

}  // namespace dg

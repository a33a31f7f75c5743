// Number formats of weight tensors: exact dequantization to fp32 and quantization from fp32.
//
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q4_K, Q5_K, Q6_K, Q8_K, NVFP4.
// Dequantization is bit-identical to gguf-py 0.19.0's `gguf.quants.dequantize` (and to ggml's
// reference decoders). NVFP4 blocks decode without the per-tensor second-level scale, exactly as
// gguf-py does; the caller multiplies by the tensor's `.scale`.
#pragma once

#include <cstdint>

#include "diffgemma/ggml_type.h"

namespace dg {

// Whether dequantize / quantize handle type t.
bool quant_supported(GGMLType t);

// Bytes taken by n values of type t; throws dg::Error if n is not a multiple of the block size.
uint64_t quant_bytes(GGMLType t, int64_t n);

// dst[0..n) = the n values stored at src (n a multiple of t's block size). Throws dg::Error for
// an unsupported type or a bad n.
void dequantize(GGMLType t, const void* src, float* dst, int64_t n);

struct QuantizeOptions {
  // NVFP4 only: the second-level (per-tensor) scale s2. Values are encoded as x / s2 and decode
  // (without s2) to that; store s2 as the tensor's `.scale`. See nvfp4_tensor_scale().
  float nvfp4_scale = 1.0f;
};

// Encodes n finite values (a multiple of t's block size) into quant_bytes(t, n) bytes at dst. Each block
// depends only on its own values, so any split of a row across threads gives the same bytes.
// Quantizers minimise the squared error of the decoded values; where gguf-py has a quantizer,
// its choice is among the candidates, so the error per block is never larger than gguf-py's.
void quantize(GGMLType t, const float* src, void* dst, int64_t n, const QuantizeOptions& opt = {});

// The NVFP4 second-level scale for values x[0..n): amax / (6 * 448) (the largest block scale then
// lands on E4M3's maximum), or 1 when all values are zero.
float nvfp4_tensor_scale(const float* x, int64_t n);

}  // namespace dg

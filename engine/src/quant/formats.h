// Per-format block codecs behind dg::dequantize / dg::quantize (quant.h). Each function handles
// n_blocks consecutive blocks; src/dst are the raw block bytes.
#pragma once

#include <cstdint>

#include "diffgemma/quant.h"

namespace dg::quant {

using DequantizeFn = void (*)(const void* src, float* dst, int64_t n_blocks);
using QuantizeFn = void (*)(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);

// legacy_quants.cpp: 32-value blocks with one fp16 scale (and offset).
void dequantize_q4_0(const void* src, float* dst, int64_t n_blocks);
void dequantize_q4_1(const void* src, float* dst, int64_t n_blocks);
void dequantize_q5_0(const void* src, float* dst, int64_t n_blocks);
void dequantize_q5_1(const void* src, float* dst, int64_t n_blocks);
void quantize_q4_0(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q4_1(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q5_0(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q5_1(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);

// q8_quants.cpp: 8-bit formats (Q8_0 weights; Q8_1 / Q8_K activations of the dot products).
void dequantize_q8_0(const void* src, float* dst, int64_t n_blocks);
void dequantize_q8_1(const void* src, float* dst, int64_t n_blocks);
void dequantize_q8_k(const void* src, float* dst, int64_t n_blocks);
void quantize_q8_0(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q8_1(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q8_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);

// k_quants.cpp: 256-value super-blocks with 6/8-bit sub-block scales.
void dequantize_q4_k(const void* src, float* dst, int64_t n_blocks);
void dequantize_q5_k(const void* src, float* dst, int64_t n_blocks);
void dequantize_q6_k(const void* src, float* dst, int64_t n_blocks);
void quantize_q4_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q5_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);
void quantize_q6_k(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);

// nvfp4.cpp: 64-value blocks of E2M1 codes with four E4M3 scales.
void dequantize_nvfp4(const void* src, float* dst, int64_t n_blocks);
void quantize_nvfp4(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt);

}  // namespace dg::quant

// One weight product through the engine's kernels, outside any model: the tests' way to hold each
// kernel (every weight format, every ISA path) to its error bound. The process's kernel path and
// ISA apply (profile.h: set_kernel_mode_string / set_kernel_isa_string).
#pragma once

#include <cstdint>

#include "diffgemma/ggml_type.h"

namespace dg {

// y[t, o] = out_scale * sum_k W[o, k] * x[t, k]  (nn.functional.linear): W is n_out rows of n_in
// values of `type` (raw blocks, as in a GGUF file); x: [n_rows, n_in]; y: [n_rows, n_out]. The fast
// path quantizes x to 8 bits (when n_in is a multiple of 32) and runs the int8 kernels for
// quantized types. Throws dg::Error for a type the forward pass does not read.
// packed: W goes through the packed-panel layout of the experts (cpu/qpack.h) first.
void probe_linear(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, float out_scale, const float* x,
                  int64_t n_rows, float* y, int n_threads, bool packed = false);

// Whether W of this type and shape has a packed layout (the experts' load-time packing).
bool probe_pack_applies(GGMLType type, int64_t n_out, int64_t n_in);

// W in the packed layout (packed: as many bytes as W) and restored from it (restored: the same).
// Throws dg::Error when probe_pack_applies() is false.
void probe_pack(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, uint8_t* packed, uint8_t* restored);

// y[t, j] = out_scale * sum_r p[t, r] * W[r, j]  (the soft embedding): W as above, p: [n_rows, n_out],
// y: [n_rows, n_in]. The fast path on AVX512-BF16 with a quantized W takes the bf16 kernel.
void probe_soft_embed(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, float out_scale, const float* p,
                      int64_t n_rows, float* y, int n_threads);

}  // namespace dg

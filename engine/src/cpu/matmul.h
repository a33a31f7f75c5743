// Weight x activation products: the one interface every linear layer goes through, so faster
// kernels (quantized dot products, ISA dispatch) can replace the reference bodies later.
//
// Each output element is one thread's fixed-order dot product, independent of how many rows
// are in the batch or how work is split: results are bit-identical for any thread count and
// any chunking of the rows.
//
// Kernel paths (cpu_features.h): fast (default) runs quantized weights through the int8 GEMM of
// qgemm.h on the input's 8-bit quantization, and float weights through the packed GEMM of
// gemm.h with fp32 accumulation; exact runs every weight through gemm.h with fp64
// accumulation; reference runs the scalar bodies below. All keep one fixed-order reduction per
// output element, so all are thread-count invariant.
//
// A weight's out_scale (NVFP4's second-level scale) multiplies each of its products.
#pragma once

#include <cstdint>

#include "cpu/q8_acts.h"
#include "cpu/weight_view.h"

namespace dg {

class ThreadPool;

// Per-thread fp32 scratch for dequantized weight rows; `per_thread` floats each.
struct RowScratch {
  float* base = nullptr;
  int64_t per_thread = 0;
  float* of(int thread) const { return base + thread * per_thread; }
};

// Fixed-order dot product of fp32 vectors: 16 interleaved fp64 partial sums, then a fixed
// reduction tree, rounded once (the reference kernel; closer to exact than a BLAS sgemm).
float dot_f32(const float* a, const float* b, int64_t n);

// The input of one or more linear layers: fp32 rows, and on the fast path their 8-bit
// quantization, made once and read by every weight of the same input (q, k, v; gate, up).
struct LinearInput {
  const float* x = nullptr;  // [n_rows, ldx]
  int64_t ldx = 0, n_rows = 0, K = 0;
  QuantActs q;               // valid() when quantized
};

// Builds the input of x [n_rows, ldx] (K values per row): quantized into buf on the fast path
// when K is a multiple of 32 (the activation block), else fp32 only.
LinearInput linear_input(ThreadPool& pool, const float* x, int64_t ldx, int64_t n_rows, int64_t K,
                         QuantActsBuffer& buf);

// y[t, o] = sum_i W[o, i] * in[t, i]: the int8 kernels when the input is quantized and the
// weight's type has them, else the float kernels on in.x. With cap > 0, then y = softcap(y, cap)
// (activation.h): on the int8 path each 32-output panel right after its products, while its
// rows are still in cache (the LM head's [256, 262144] logits are not walked a second time).
void matmul(ThreadPool& pool, const WeightView& w, const LinearInput& in, float* y, int64_t ldy,
            const RowScratch& scratch, float cap = 0.0f);

// y[t, o] = sum_i W[o, i] * x[t, i]  for t < n_rows, o < W.n_out   (nn.functional.linear)
// x: [n_rows, ldx >= W.n_in]   y: [n_rows, ldy >= W.n_out]. Scratch needs W.n_in per thread.
void matmul(ThreadPool& pool, const WeightView& w, const float* x, int64_t ldx, int64_t n_rows,
            float* y, int64_t ldy, const RowScratch& scratch);

// Single-threaded form for callers that already run inside a parallel loop.
void matmul_rows(const WeightView& w, int64_t o_begin, int64_t o_end, const float* x, int64_t ldx,
                 int64_t n_rows, float* y, int64_t ldy, float* row_scratch);

// y[t, j] = sum_r p[t, r] * W[r, j]  for t < n_rows, j < W.n_in   (probs @ embedding matrix)
// p: [n_rows, ldp >= W.n_out]   y: [n_rows, ldy >= W.n_in]. Sums run over r in increasing order.
// Scratch needs kTransposedColumns floats per thread.
constexpr int64_t kTransposedColumns = 256;
void matmul_transposed(ThreadPool& pool, const WeightView& w, const float* p, int64_t ldp,
                       int64_t n_rows, float* y, int64_t ldy, const RowScratch& scratch);

}  // namespace dg

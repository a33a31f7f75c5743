// RMSNorm (DiffusionGemmaRMSNorm): y = x * (mean(x^2) + eps)^-0.5, then * w when weighted
// (Gemma 4 multiplies by w, not 1 + w). fp32 in and out; computed in fp64 and rounded once per
// element, which keeps the engine closer to the exact values than transformers' fp32 steps.
#pragma once

#include <cstdint>

namespace dg {

class ThreadPool;

// n_rows rows of `dim` elements, row r at x + r*ldx / y + r*ldy (in place allowed: x == y).
// w: [dim] or nullptr for the weightless norm (v_norm, router.norm, self_conditioning.post_norm).
// Per-head norms pass rows = tokens*heads with ld = dim.
void rms_norm(ThreadPool& pool, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_rows,
              int64_t dim, const float* w, float eps);

// One row, single-threaded.
void rms_norm_row(const float* x, float* y, int64_t dim, const float* w, float eps);

// Rows [r0, r1), single-threaded (the same values as rms_norm_row, eight rows at a time).
void rms_norm_rows(const float* x, int64_t ldx, float* y, int64_t ldy, int64_t r0, int64_t r1, int64_t dim,
                   const float* w, float eps);

}  // namespace dg

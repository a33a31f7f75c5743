// A read-only view of a 2-D weight matrix inside the mapped GGUF: n_out rows of n_in elements,
// PyTorch layout ([out, in]; ggml ne = {n_in, n_out}). Nothing is copied; kernels dequantize
// rows on the fly.
#pragma once

#include <cstdint>

#include "diffgemma/ggml_type.h"

namespace dg {

struct WeightView {
  GGMLType type = GGMLType::F32;
  int64_t n_in = 0;         // elements per row (ggml ne[0])
  int64_t n_out = 0;        // rows
  uint64_t row_bytes = 0;   // bytes from one row to the next
  const uint8_t* data = nullptr;
  float out_scale = 1.0f;   // multiplies every product (NVFP4's second-level `.scale`)
  bool packed = false;      // rows stored as the kernels' panels (cpu/qpack.h), not row by row

  bool empty() const { return data == nullptr; }
  const uint8_t* row(int64_t r) const { return data + static_cast<uint64_t>(r) * row_bytes; }
  // Rows [first, first + n) as their own view (an expert's slice of a stacked tensor); for a
  // packed matrix, first is a multiple of 32 (a panel).
  WeightView rows(int64_t first, int64_t n) const {
    WeightView v = *this;
    v.data = row(first);
    v.n_out = n;
    return v;
  }
};

}  // namespace dg

// Per-layer K/V of everything encoded so far (transformers DynamicCache semantics):
// full layers keep every position; sliding layers keep only the last window-1 positions
// (DynamicSlidingWindowLayer.update). Rows are [n_kv_head * head_dim], head-major inside a row.
#pragma once

#include <cstdint>
#include <vector>

#include "cpu/attention.h"
#include "diffgemma/model.h"

namespace dg {

class KVCache {
 public:
  void init(const ModelHParams& hp, int64_t n_ctx);
  void clear();

  int64_t len(int64_t il) const { return layers_[il].len; }
  int64_t pos0(int64_t il) const { return layers_[il].pos0; }
  int64_t capacity(int64_t il) const { return layers_[il].cap; }
  int64_t row_size(int64_t il) const { return layers_[il].ld; }
  KVSpan span(int64_t il) const;

  // Appends T rows at positions [pos0, pos0 + T) (pos0 must follow the cached ones); sliding
  // layers then drop all but the last window-1.
  void append(int64_t il, const float* k, const float* v, int64_t T, int64_t pos0);

 private:
  struct Layer {
    std::vector<float> k, v;  // [cap, ld]
    int64_t cap = 0, len = 0, pos0 = 0, ld = 0;
    bool sliding = false;
  };
  std::vector<Layer> layers_;
};

}  // namespace dg

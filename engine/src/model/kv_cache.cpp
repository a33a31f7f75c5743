#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace dg {

void KVCache::init(const ModelHParams& hp, int64_t n_ctx) {
  layers_.assign(static_cast<size_t>(hp.n_layer), Layer{});
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    Layer& L = layers_[static_cast<size_t>(il)];
    L.sliding = hp.is_sliding[static_cast<size_t>(il)];
    L.ld = hp.n_kv_head[static_cast<size_t>(il)] * hp.head_dim(il);
    L.cap = L.sliding ? std::min(n_ctx, hp.sliding_window - 1) : n_ctx;
    L.k.assign(static_cast<size_t>(L.cap * L.ld), 0.0f);
    L.v.assign(static_cast<size_t>(L.cap * L.ld), 0.0f);
  }
}

void KVCache::clear() {
  for (Layer& L : layers_) L.len = L.pos0 = 0;
}

KVSpan KVCache::span(int64_t il) const {
  const Layer& L = layers_[static_cast<size_t>(il)];
  return KVSpan{L.k.data(), L.v.data(), L.len, L.pos0, L.ld};
}

void KVCache::append(int64_t il, const float* k, const float* v, int64_t T, int64_t pos0) {
  Layer& L = layers_[static_cast<size_t>(il)];
  if (L.len == 0) L.pos0 = pos0;
  const int64_t total = L.len + T;
  const int64_t keep = std::min(total, L.cap);  // full layers: the caller checked total <= cap
  const size_t row = static_cast<size_t>(L.ld) * sizeof(float);
  if (keep == 0) {
    // window of 1: nothing is kept
  } else if (T >= keep) {  // only the newest rows survive
    std::memcpy(L.k.data(), k + (T - keep) * L.ld, keep * row);
    std::memcpy(L.v.data(), v + (T - keep) * L.ld, keep * row);
  } else {
    const int64_t old_keep = keep - T;
    if (old_keep < L.len) {
      std::memmove(L.k.data(), L.k.data() + (L.len - old_keep) * L.ld, old_keep * row);
      std::memmove(L.v.data(), L.v.data() + (L.len - old_keep) * L.ld, old_keep * row);
    }
    std::memcpy(L.k.data() + old_keep * L.ld, k, T * row);
    std::memcpy(L.v.data() + old_keep * L.ld, v, T * row);
  }
  L.pos0 = pos0 + T - keep;
  L.len = keep;
}

}  // namespace dg

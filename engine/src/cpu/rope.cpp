#include "cpu/rope.h"

#include <cmath>

#include "util/thread_pool.h"

namespace dg {

std::vector<float> rope_inv_freq(float base, int64_t n_rot, const float* freq_factors) {
  std::vector<float> inv(static_cast<size_t>(n_rot / 2));
  for (int64_t j = 0; j < n_rot / 2; ++j) {
    const float expo = static_cast<float>(2 * j) / static_cast<float>(n_rot);
    float f = 1.0f / std::pow(base, expo);
    if (freq_factors) f /= freq_factors[j];
    inv[static_cast<size_t>(j)] = f;
  }
  return inv;
}

void rope_tables(const std::vector<float>& inv_freq, int64_t pos0, int64_t n_pos, float* cos_out,
                 float* sin_out) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (int64_t t = 0; t < n_pos; ++t) {
    const float p = static_cast<float>(pos0 + t);
    for (int64_t j = 0; j < half; ++j) {
      const float ang = p * inv_freq[static_cast<size_t>(j)];
      cos_out[t * half + j] = std::cos(ang);
      sin_out[t * half + j] = std::sin(ang);
    }
  }
}

void rope_apply(ThreadPool& pool, float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim,
                int64_t n_rot, const float* cos_t, const float* sin_t) {
  const int64_t half = n_rot / 2;
  pool.parallel_for(n_tok * n_heads, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t t = r / n_heads;
      float* v = x + r * head_dim;
      const float* c = cos_t + t * half;
      const float* s = sin_t + t * half;
      for (int64_t j = 0; j < half; ++j) {
        const float x0 = v[j], x1 = v[j + half];
        // x*cos + rotate_half(x)*sin, rounded once
        v[j] = static_cast<float>(static_cast<double>(x0) * c[j] - static_cast<double>(x1) * s[j]);
        v[j + half] = static_cast<float>(static_cast<double>(x1) * c[j] + static_cast<double>(x0) * s[j]);
      }
    }
  });
}

}  // namespace dg

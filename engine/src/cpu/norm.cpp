#include "cpu/norm.h"

#include <cmath>

#include "util/thread_pool.h"

namespace dg {

void rms_norm_row(const float* x, float* y, int64_t dim, const float* w, float eps) {
  double ss = 0.0;  // accurate sum of squares, like torch's cascaded reduction
  for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(x[i]) * x[i];
  const double r = 1.0 / std::sqrt(ss / static_cast<double>(dim) + static_cast<double>(eps));
  // One rounding per element (transformers rounds after each fp32 multiply).
  if (w) {
    for (int64_t i = 0; i < dim; ++i) y[i] = static_cast<float>(x[i] * r * w[i]);
  } else {
    for (int64_t i = 0; i < dim; ++i) y[i] = static_cast<float>(x[i] * r);
  }
}

void rms_norm(ThreadPool& pool, const float* x, int64_t ldx, float* y, int64_t ldy, int64_t n_rows,
              int64_t dim, const float* w, float eps) {
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) rms_norm_row(x + r * ldx, y + r * ldy, dim, w, eps);
  });
}

}  // namespace dg

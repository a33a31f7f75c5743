#include "cpu/attention.h"

#include <algorithm>

#include "cpu/activation.h"
#include "cpu/matmul.h"
#include "util/thread_pool.h"

namespace dg {

void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t n_q, int64_t q_pos0,
               const KVSpan& cached, const KVSpan& fresh, AttentionMask mask, int64_t window, float* out,
               const AttentionScratch& scratch) {
  const int64_t hd = shape.head_dim;
  const int64_t group = shape.n_head / shape.n_kv_head;
  const int64_t ldq = shape.n_head * hd;
  const KVSpan* spans[2] = {&cached, &fresh};

  // One item per (query token, head); each item owns its output slice.
  pool.parallel_for(n_q * shape.n_head, [&](int64_t b, int64_t e, int th) {
    float* scores = scratch.scores + th * scratch.scores_per_thread;
    double* acc = scratch.acc + th * scratch.acc_per_thread;
    for (int64_t item = b; item < e; ++item) {
      const int64_t t = item / shape.n_head;
      const int64_t h = item % shape.n_head;
      const int64_t g = h / group;
      const int64_t qp = q_pos0 + t;
      const float* qv = q + t * ldq + h * hd;

      // Visible keys of each span: a contiguous index range [lo, hi).
      int64_t lo[2], hi[2];
      for (int s = 0; s < 2; ++s) {
        const KVSpan& sp = *spans[s];
        lo[s] = 0;
        hi[s] = sp.len;
        if (mask == AttentionMask::kCausal) {
          hi[s] = std::clamp<int64_t>(qp - sp.pos0 + 1, 0, sp.len);
          if (window > 0) lo[s] = std::clamp<int64_t>(qp - window + 1 - sp.pos0, 0, hi[s]);
        }
      }
      int64_t n = 0;
      for (int s = 0; s < 2; ++s) {
        const KVSpan& sp = *spans[s];
        for (int64_t j = lo[s]; j < hi[s]; ++j) scores[n++] = dot_f32(qv, sp.k + j * sp.ld + g * hd, hd);
      }
      float* o = out + t * ldq + h * hd;
      std::fill(acc, acc + hd, 0.0);  // fp64 sum over keys, one rounding at the end
      if (n == 0) {
        std::fill(o, o + hd, 0.0f);
        continue;  // cannot happen for real inputs: a query always sees itself
      }
      softmax_row(scores, n);
      n = 0;
      for (int s = 0; s < 2; ++s) {
        const KVSpan& sp = *spans[s];
        for (int64_t j = lo[s]; j < hi[s]; ++j) {
          const float p = scores[n++];
          const float* vv = sp.v + j * sp.ld + g * hd;
          for (int64_t d = 0; d < hd; ++d) acc[d] += static_cast<double>(p) * vv[d];
        }
      }
      for (int64_t d = 0; d < hd; ++d) o[d] = static_cast<float>(acc[d]);
    }
  });
}

}  // namespace dg

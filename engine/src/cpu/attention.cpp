#include "cpu/attention.h"

#include <algorithm>

#include <limits>

#include "cpu/activation.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/matmul.h"
#include "cpu/vecmath.h"
#include "util/thread_pool.h"

namespace dg {
namespace {

// Visible keys of span `sp` for a query at position qp: the index range [lo, hi).
void visible(const KVSpan& sp, int64_t qp, AttentionMask mask, int64_t window, int64_t* lo, int64_t* hi) {
  *lo = 0;
  *hi = sp.len;
  if (mask == AttentionMask::kCausal) {
    *hi = std::clamp<int64_t>(qp - sp.pos0 + 1, 0, sp.len);
    if (window > 0) *lo = std::clamp<int64_t>(qp - window + 1 - sp.pos0, 0, *hi);
  }
}

// Keys [lo, lo + n) of head g of a span as a weight matrix: n rows of head_dim fp32 values.
WeightView head_rows(const float* base, const KVSpan& sp, int64_t g, int64_t hd, int64_t lo, int64_t n) {
  WeightView w;
  w.type = GGMLType::F32;
  w.n_in = hd;
  w.n_out = n;
  w.row_bytes = static_cast<uint64_t>(sp.ld) * sizeof(float);
  w.data = reinterpret_cast<const uint8_t*>(base + lo * sp.ld + g * hd);
  return w;
}

void attention_blocked(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t n_q, int64_t q_pos0,
                       const KVSpan& cached, const KVSpan& fresh, AttentionMask mask, int64_t window, float* out,
                       const AttentionScratch& scratch) {
  const int64_t hd = shape.head_dim;
  const int64_t group = shape.n_head / shape.n_kv_head;
  const int64_t ldq = shape.n_head * hd;
  const int64_t n_blocks = (n_q + kAttentionRowBlock - 1) / kAttentionRowBlock;
  const KVSpan* spans[2] = {&cached, &fresh};
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  // One item per (head, block of queries); each item owns its output rows of that head.
  pool.parallel_for(shape.n_head * n_blocks, [&](int64_t b, int64_t e, int th) {
    float* S = scratch.scores + th * scratch.scores_per_thread;  // [rows, n0 + n1]
    for (int64_t item = b; item < e; ++item) {
      const int64_t h = item / n_blocks, g = h / group;
      const int64_t t0 = (item % n_blocks) * kAttentionRowBlock;
      const int64_t nr = std::min(kAttentionRowBlock, n_q - t0);
      // Union of the rows' visible ranges per span (rows' own ranges are masked below).
      int64_t LO[2], HI[2];
      for (int s = 0; s < 2; ++s) {
        int64_t lo_a, hi_a, lo_b, hi_b;
        visible(*spans[s], q_pos0 + t0, mask, window, &lo_a, &hi_a);
        visible(*spans[s], q_pos0 + t0 + nr - 1, mask, window, &lo_b, &hi_b);
        LO[s] = std::min(lo_a, lo_b);
        HI[s] = std::max(hi_a, hi_b);
        if (HI[s] < LO[s]) HI[s] = LO[s];
      }
      const int64_t n0 = HI[0] - LO[0], n1 = HI[1] - LO[1], ld = n0 + n1;
      const float* qb = q + t0 * ldq + h * hd;
      const WeightView k0 = head_rows(cached.k, cached, g, hd, LO[0], n0);
      const WeightView k1 = head_rows(fresh.k, fresh, g, hd, LO[1], n1);
      gemm_wt(k0, 0, n0, qb, ldq, nr, S, ld, false);
      gemm_wt(k1, 0, n1, qb, ldq, nr, S + n0, ld, false);
      for (int64_t r = 0; r < nr; ++r) {
        float* row = S + r * ld;
        if (mask == AttentionMask::kCausal) {
          for (int s = 0; s < 2; ++s) {
            int64_t lo, hi;
            visible(*spans[s], q_pos0 + t0 + r, mask, window, &lo, &hi);
            float* sr = row + (s == 0 ? 0 : n0) - LO[s];
            for (int64_t j = LO[s]; j < HI[s]; ++j)
              if (j < lo || j >= hi) sr[j] = kNegInf;
          }
        }
        if (fast_path()) softmax_fast(row, row, ld);
        else softmax_row(row, ld);
      }
      const WeightView v0 = head_rows(cached.v, cached, g, hd, LO[0], n0);
      const WeightView v1 = head_rows(fresh.v, fresh, g, hd, LO[1], n1);
      gemm_w2(v0, S, ld, v1, n1 > 0 ? S + n0 : nullptr, ld, 0, hd, nr, out + t0 * ldq + h * hd, ldq, false);
    }
  });
}

}  // namespace

void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t n_q, int64_t q_pos0,
               const KVSpan& cached, const KVSpan& fresh, AttentionMask mask, int64_t window, float* out,
               const AttentionScratch& scratch) {
  if (fast_kernels()) {
    attention_blocked(pool, shape, q, n_q, q_pos0, cached, fresh, mask, window, out, scratch);
    return;
  }
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

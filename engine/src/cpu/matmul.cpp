#include "cpu/matmul.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "cpu/activation.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/qgemm.h"
#include "cpu/qpack.h"
#include "cpu/qpanel.h"
#include "quant/dequantize.h"
#include "util/thread_pool.h"

namespace dg {

float dot_f32(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  double acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += static_cast<double>(a[i + j]) * b[i + j];
  }
  for (int j = 0; i < n; ++i, ++j) acc[j] += static_cast<double>(a[i]) * b[i];
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return static_cast<float>(acc[0]);
}

void matmul_rows(const WeightView& w, int64_t o_begin, int64_t o_end, const float* x, int64_t ldx,
                 int64_t n_rows, float* y, int64_t ldy, float* row_scratch) {
  if (w.packed) throw std::logic_error("matmul_rows: packed weights (restore them first)");
  if (fast_kernels() && gemm_supported(w.type)) {
    gemm_wt(w, o_begin, o_end, x, ldx, n_rows, y, ldy, false);
    return;
  }
  for (int64_t o = o_begin; o < o_end; ++o) {
    const float* wr;
    if (w.type == GGMLType::F32) {
      wr = reinterpret_cast<const float*>(w.row(o));
    } else {
      dequantize_row(w.type, w.row(o), 0, w.n_in, row_scratch);
      wr = row_scratch;
    }
    for (int64_t t = 0; t < n_rows; ++t) {
      const float v = dot_f32(wr, x + t * ldx, w.n_in);
      y[t * ldy + o] = w.out_scale != 1.0f ? v * w.out_scale : v;
    }
  }
}

LinearInput linear_input(ThreadPool& pool, const float* x, int64_t ldx, int64_t n_rows, int64_t K,
                         QuantActsBuffer& buf) {
  LinearInput in;
  in.x = x;
  in.ldx = ldx;
  in.n_rows = n_rows;
  in.K = K;
  if (fast_path() && K % kActBlock == 0 && n_rows > 0) in.q = buf.quantize(pool, x, ldx, n_rows, K);
  return in;
}

namespace {
bool use_int8(const WeightView& w, const LinearInput& in) {
  if (!fast_path() || !qgemm_supported(w.type) || in.q.n_rows == 0) return false;
  if (!in.q.valid()) throw std::logic_error("matmul: the input's quantization was overwritten before use");
  return true;
}
}  // namespace

void matmul(ThreadPool& pool, const WeightView& w, const LinearInput& in, float* y, int64_t ldy,
            const RowScratch& scratch, float cap) {
  if (in.n_rows <= 0) return;
  if (use_int8(w, in)) {
    const int64_t n_panels = (w.n_out + kQNR - 1) / kQNR;
    // Panels go out in claims of about 2 GOP (a millisecond or two) and at most half a thread's
    // share, as threads become free: a core the host slows down takes fewer. (Each claim's first
    // chunk starts without a prefetch: claims are kept large.)
    const int64_t panel_ops = 2 * kQNR * w.n_in * in.q.n_rows;
    const int64_t half_share = std::max<int64_t>(1, n_panels / (2 * pool.n_threads()));
    const int64_t grain = std::clamp<int64_t>(int64_t{2000000000} / std::max<int64_t>(1, panel_ops), 1, half_share);
    pool.parallel_for_dynamic(n_panels, grain, [&](int64_t b, int64_t e, int) {
      if (cap <= 0.0f) return qgemm(w, b * kQNR, std::min(e * kQNR, w.n_out), in.q, y, ldy, false);
      for (int64_t pn = b; pn < e; ++pn) {
        const int64_t o0 = pn * kQNR, o1 = std::min(o0 + kQNR, w.n_out);
        qgemm(w, o0, o1, in.q, y, ldy, false);
        for (int64_t t = 0; t < in.n_rows; ++t) softcap(y + t * ldy + o0, o1 - o0, cap);
      }
    });
    return;
  }
  matmul(pool, w, in.x, in.ldx, in.n_rows, y, ldy, scratch);
  if (cap > 0.0f) {
    pool.parallel_for(in.n_rows, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) softcap(y + t * ldy, w.n_out, cap);
    });
  }
}

void matmul(ThreadPool& pool, const WeightView& packed_or_rows, const float* x, int64_t ldx, int64_t n_rows,
            float* y, int64_t ldy, const RowScratch& scratch) {
  if (n_rows <= 0) return;
  // The float kernels read rows: a packed matrix (only the int8 kernels read panels) is restored
  // first (the exact and reference paths), into a buffer grown to the largest one once.
  thread_local std::vector<uint8_t> restored;
  const WeightView w = restored_rows(packed_or_rows, restored);
  if (fast_kernels() && gemm_supported(w.type)) {
    // Work items are panels of kGemmNR outputs; every output is one thread's FMA chain.
    const int64_t n_panels = (w.n_out + kGemmNR - 1) / kGemmNR;
    pool.parallel_for(n_panels, [&](int64_t b, int64_t e, int) {
      gemm_wt(w, b * kGemmNR, std::min(e * kGemmNR, w.n_out), x, ldx, n_rows, y, ldy, false);
    });
    return;
  }
  pool.parallel_for(w.n_out, [&](int64_t b, int64_t e, int th) {
    matmul_rows(w, b, e, x, ldx, n_rows, y, ldy, scratch.of(th));
  });
}

void matmul_transposed(ThreadPool& pool, const WeightView& w, const float* p, int64_t ldp,
                       int64_t n_rows, float* y, int64_t ldy, const RowScratch& scratch) {
  if (n_rows <= 0) return;
  if (w.packed) throw std::logic_error("matmul_transposed: packed weights");
  if (fast_kernels() && gemm_w_supported(w.type)) {
    const int64_t n_panels = (w.n_in + kGemmNR - 1) / kGemmNR;
    pool.parallel_for(n_panels, [&](int64_t b, int64_t e, int) {
      gemm_w(w, b * kGemmNR, std::min(e * kGemmNR, w.n_in), p, ldp, n_rows, y, ldy, false);
    });
    return;
  }
  // Work items are column blocks of W (multiples of the quant block), so each thread
  // dequantizes only its own columns of every row.
  const int64_t n_blocks = (w.n_in + kTransposedColumns - 1) / kTransposedColumns;
  pool.parallel_for(n_blocks, [&](int64_t b, int64_t e, int th) {
    float* wr = scratch.of(th);
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t c0 = blk * kTransposedColumns;
      const int64_t nc = std::min(kTransposedColumns, w.n_in - c0);
      for (int64_t t = 0; t < n_rows; ++t) std::fill(y + t * ldy + c0, y + t * ldy + c0 + nc, 0.0f);
      for (int64_t r = 0; r < w.n_out; ++r) {
        dequantize_row(w.type, w.row(r), c0, nc, wr);
        for (int64_t t = 0; t < n_rows; ++t) {
          const float pr = p[t * ldp + r];
          float* yr = y + t * ldy + c0;
          for (int64_t j = 0; j < nc; ++j) yr[j] += pr * wr[j];
        }
      }
      if (w.out_scale != 1.0f)
        for (int64_t t = 0; t < n_rows; ++t)
          for (int64_t j = c0; j < c0 + nc; ++j) y[t * ldy + j] *= w.out_scale;
    }
  });
}

}  // namespace dg

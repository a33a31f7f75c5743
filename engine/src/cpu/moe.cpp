#include "cpu/moe.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <vector>

#include "cpu/activation.h"
#include "cpu/axpy.h"
#include "cpu/cpu_features.h"
#include "cpu/gemm.h"
#include "cpu/norm.h"
#include "cpu/qpack.h"
#include "cpu/qgemm.h"
#include "util/thread_pool.h"

namespace dg {
namespace {

// Thread-seconds of the per-expert work (MoEBuffers::thread_seconds) when profiling, else a
// pointer test per call. Each thread sums its own laps and adds them once, at the end of its claim.
class ExpertClock {
 public:
  explicit ExpertClock(double* sink) : sink_(sink) {}
  ~ExpertClock() {
    if (!sink_) return;
    std::lock_guard<std::mutex> lock(mutex());
    sink_[0] += s_[0], sink_[1] += s_[1];
  }
  void start() {
    if (sink_) t_ = std::chrono::steady_clock::now();
  }
  void lap(int i) {  // time since start() or the last lap, to counter i
    if (!sink_) return;
    const auto now = std::chrono::steady_clock::now();
    s_[i] += std::chrono::duration<double>(now - t_).count();
    t_ = now;
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  double* sink_;
  double s_[2] = {};
  std::chrono::steady_clock::time_point t_{};
};

}  // namespace

void moe_route(ThreadPool& pool, const RouterWeights& rw, const float* x, int64_t n_tok, int64_t n_embd,
               int64_t n_expert, int64_t k, float eps, float* tmp, float* logits, int32_t* ids, float* weights,
               const RowScratch& scratch) {
  // hidden * self.scale * self.scalar_root_size: two fp32 multiplies, the Python scalar in fp32.
  const float root = static_cast<float>(std::pow(static_cast<double>(n_embd), -0.5));
  pool.parallel_for(n_tok, [&](int64_t b, int64_t e, int) {
    rms_norm_rows(x, n_embd, tmp, n_embd, b, e, n_embd, nullptr, eps);
    for (int64_t t = b; t < e; ++t) {
      float* r = tmp + t * n_embd;
      for (int64_t i = 0; i < n_embd; ++i) r[i] = (r[i] * rw.scale[i]) * root;
    }
  });
  matmul(pool, rw.proj, tmp, n_embd, n_tok, logits, n_expert, scratch);
  pool.parallel_for(n_tok, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* p = logits + t * n_expert;
      softmax_row(p, n_expert);
      int32_t* id = ids + t * k;
      float* w = weights + t * k;
      // The k largest, descending, the lower id first among equal values: one pass in id order,
      // each value inserted behind every value at least as large (the order repeated max gives).
      int64_t n = 0;
      for (int64_t ex = 0; ex < n_expert; ++ex) {
        const float v = p[ex];
        if (n == k && !(v > w[k - 1])) continue;
        int64_t pos = n < k ? n++ : k - 1;
        for (; pos > 0 && v > w[pos - 1]; --pos) id[pos] = id[pos - 1], w[pos] = w[pos - 1];
        id[pos] = static_cast<int32_t>(ex);
        w[pos] = v;
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < k; ++j) sum += w[j];
      for (int64_t j = 0; j < k; ++j) w[j] = (w[j] / sum) * rw.expert_scale[id[j]];
    }
  });
}

void moe_experts(ThreadPool& pool, const ExpertWeights& ew, const float* x, int64_t n_tok, int64_t n_expert,
                 int64_t k, const int32_t* ids, const float* weights, const MoEBuffers& buf, float* out,
                 const RowScratch& scratch) {
  const int64_t H = ew.n_embd, I = ew.n_ff_exp, n_slots = n_tok * k;

  // Counting sort of the (token, choice) slots by expert; slots keep token order per expert.
  std::fill(buf.count, buf.count + n_expert + 1, 0);
  for (int64_t s = 0; s < n_slots; ++s) ++buf.count[ids[s] + 1];
  for (int64_t e = 0; e < n_expert; ++e) buf.count[e + 1] += buf.count[e];  // count[e] = first row
  // Second pass writes rows; use count[e] as a moving cursor, then restore the starts.
  for (int64_t s = 0; s < n_slots; ++s) {
    const int32_t row = buf.count[ids[s]]++;
    buf.slot_of[s] = row;
    buf.token_of[row] = static_cast<int32_t>(s / k);
  }
  for (int64_t e = n_expert; e > 0; --e) buf.count[e] = buf.count[e - 1];
  buf.count[0] = 0;

  const bool grouped = fast_kernels() && gemm_supported(ew.gate_base.type) && gemm_supported(ew.up_base.type) &&
                       gemm_supported(ew.down_base.type);
  // Fast path: the experts read 8-bit activations when all three weights have int8 kernels.
  const bool int8 = grouped && fast_path() && qgemm_supported(ew.gate_base.type) &&
                    qgemm_supported(ew.up_base.type) && qgemm_supported(ew.down_base.type) && H % kActBlock == 0 &&
                    I % kActBlock == 0 && buf.q_in && buf.q_mid;
  // With q_tok, each token's row is quantized once and its codes gathered by expert (the same
  // codes as quantizing the gathered float rows); otherwise the float rows are gathered.
  const bool gather_codes = int8 && buf.q_tok;
  if (!gather_codes) {
    pool.parallel_for(n_slots, [&](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; ++r) std::memcpy(buf.xg + r * H, x + buf.token_of[r] * H, sizeof(float) * H);
    });
  }
  QuantActs q_in;
  if (int8) {
    q_in = gather_codes ? buf.q_in->gather(pool, buf.q_tok->quantize(pool, x, H, n_tok, H), buf.token_of, n_slots)
                        : buf.q_in->quantize(pool, buf.xg, H, n_slots, H);
    buf.q_mid->begin(n_slots, I);
  }
  if (grouped) {
    // Grouped by expert: each expert's weights are read once per pass, as small GEMMs over its
    // gathered rows. Experts go to threads one at a time, in id order, as threads become free
    // (a core the host slows down takes fewer); results do not depend on the split.
    pool.parallel_for_dynamic(n_expert, 1, [&](int64_t eb, int64_t ee, int) {
      ExpertClock clk(buf.thread_seconds);
      for (int64_t e = eb; e < ee; ++e) {
        const int64_t r0 = buf.count[e], n = buf.count[e + 1] - r0;
        if (n == 0) continue;
        float* g = buf.gate + r0 * I;
        if (int8) {
          const QuantActs qx = q_in.rows(r0, n);
          clk.start();
          qgemm(ew.gate(e), 0, I, qx, g, I, false);
          qgemm(ew.up(e), 0, I, qx, buf.up + r0 * I, I, false);
          clk.lap(0);
          gelu_mul_fast(g, buf.up + r0 * I, g, n * I);
          const QuantActs qm = buf.q_mid->quantize_rows(buf.gate, I, r0, r0 + n).rows(r0, n);
          clk.lap(1);
          qgemm(ew.down(e), 0, H, qm, buf.y + r0 * H, H, false);
          clk.lap(0);
          continue;
        }
        thread_local std::vector<uint8_t> gate_rows, up_rows, down_rows;  // packed experts, float kernels
        gemm_wt(restored_rows(ew.gate(e), gate_rows), 0, I, buf.xg + r0 * H, H, n, g, I, false);
        gemm_wt(restored_rows(ew.up(e), up_rows), 0, I, buf.xg + r0 * H, H, n, buf.up + r0 * I, I, false);
        if (fast_path()) gelu_mul_fast(g, buf.up + r0 * I, g, n * I);
        else gelu_mul(g, buf.up + r0 * I, g, n * I);
        gemm_wt(restored_rows(ew.down(e), down_rows), 0, H, g, I, n, buf.y + r0 * H, H, false);
      }
    });
  }
  for (int64_t e = 0; e < n_expert && !grouped; ++e) {
    const int64_t r0 = buf.count[e], n = buf.count[e + 1] - r0;
    if (n == 0) continue;
    matmul(pool, ew.gate(e), buf.xg + r0 * H, H, n, buf.gate + r0 * I, I, scratch);
    matmul(pool, ew.up(e), buf.xg + r0 * H, H, n, buf.up + r0 * I, I, scratch);
    pool.parallel_for(n, [&](int64_t b, int64_t en, int) {
      for (int64_t r = r0 + b; r < r0 + en; ++r) gelu_mul(buf.gate + r * I, buf.up + r * I, buf.gate + r * I, I);
    });
    matmul(pool, ew.down(e), buf.gate + r0 * I, I, n, buf.y + r0 * H, H, scratch);
  }

  pool.parallel_for(n_tok, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* o = out + t * H;
      std::fill(o, o + H, 0.0f);
      // Choices of this token in increasing expert id (k is small).
      int64_t done = 0;
      int32_t last = -1;
      while (done < k) {
        int64_t j_min = -1;
        for (int64_t j = 0; j < k; ++j) {
          const int32_t id = ids[t * k + j];
          if (id > last && (j_min < 0 || id < ids[t * k + j_min])) j_min = j;
        }
        const float w = weights[t * k + j_min];
        const float* y = buf.y + static_cast<int64_t>(buf.slot_of[t * k + j_min]) * H;
        axpy(o, y, w, H);
        last = ids[t * k + j_min];
        ++done;
      }
    }
  });
}

}  // namespace dg

// Canvas input of the decoder (DiffusionGemmaDecoderModel.forward, DiffusionGemmaSelfConditioning):
//   e    = E[canvas] * sqrt(H)
//   soft = (softmax_fp32(sc_logits) @ E) * sqrt(H), or zeros on a canvas's first step
//   x0   = rms_norm_noscale(e + down(gelu_tanh(gate(n)) * up(n))),  n = pre_norm(soft)
#include <algorithm>

#include "cpu/activation.h"
#include "cpu/gemm_bf16.h"
#include "cpu/qgemm.h"
#include "cpu/soft_embed_q8.h"
#include "cpu/norm.h"
#include "model/context_impl.h"
#include "cpu/widen.h"
#include "util/timing.h"

namespace dg {

// hn[t] = sum over the k most probable tokens i of row t of p[t, i] * E[i] (ContextParams::sc_top_k):
// the probabilities of the full softmax, the k largest kept by a k-entry min-heap (ties: the lower
// id), their rows of E summed in increasing id.
void ContextImpl::soft_embed_top_k(const float* sc_logits, int64_t T) {
  const int64_t H = hp.n_embd, V = hp.n_vocab, K = params.sc_top_k;
  const WeightView& E = m.w.token_embd;
  const size_t per_thread = static_cast<size_t>(V + H + 2 * K);
  if (sc_prob.size() < static_cast<size_t>(pool.n_threads()) * per_thread)
    sc_prob.resize(static_cast<size_t>(pool.n_threads()) * per_thread);
  pool.parallel_for(T, [&](int64_t b, int64_t e, int tid) {
    float* p = sc_prob.data() + static_cast<size_t>(tid) * per_thread;  // [V] probabilities
    float* row = p + V;                                                  // [H] a dequantized E row
    auto* heap = reinterpret_cast<int32_t*>(row + H);                    // [K] token ids
    for (int64_t t = b; t < e; ++t) {
      const float* l = sc_logits + t * V;
      softmax_row_to(l, p, V);
      // Min-heap of K ids by (probability, then the higher id first out).
      auto less = [&](int32_t a, int32_t c) { return p[a] > p[c] || (p[a] == p[c] && a < c); };
      int64_t n = 0;
      for (int32_t i = 0; i < V; ++i) {
        if (n < K) {
          heap[n++] = i;
          std::push_heap(heap, heap + n, less);
        } else if (p[i] > p[heap[0]]) {
          std::pop_heap(heap, heap + n, less);
          heap[n - 1] = i;
          std::push_heap(heap, heap + n, less);
        }
      }
      std::sort(heap, heap + n);
      float* out = hn.data() + t * H;
      std::fill(out, out + H, 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const float w = p[heap[j]];
        if (w == 0.0f) continue;
        widen_row(E, heap[j], 0, H, row);
        for (int64_t c = 0; c < H; ++c) out[c] += w * row[c];
      }
      if (E.out_scale != 1.0f)
        for (int64_t c = 0; c < H; ++c) out[c] *= E.out_scale;
    }
  });
}

void ContextImpl::self_conditioning(const int32_t* canvas, int64_t T, const float* sc_logits) {
  const int64_t H = hp.n_embd, V = hp.n_vocab, F = hp.n_ff;
  const float eps = hp.norm_eps;
  embed(canvas, T, x.data());
  PhaseClock clk(prof);
  if (sc_logits && params.sc_top_k > 0 && params.sc_top_k < V) {
    clk.at(Phase::kSelfCondSoft);
    soft_embed_top_k(sc_logits, T);
  } else if (sc_logits) {
    // Row groups of sc_rows bound the [rows, V] probability buffer (canvas-sized, not batch-sized).
    // Fast path on a quantized embedding (whose products already see 8-bit activations
    // elsewhere): the int8 kernels (soft_embed_q8.h: the probabilities and E's columns in 8 bits
    // per 32 vocabulary rows, the same bytes on every ISA path); where the vocabulary is not a
    // multiple of 32, on AVX512-BF16, bf16 dot products. Float embeddings keep the fp32 GEMM, so
    // the fast path on float weights stays within fp32 rounding.
    const bool q8 = fast_path() && soft_embed_q8_applies(m.w.token_embd);
    const bool bf16 = !q8 && fast_path() && bf16_gemm_available() && qgemm_supported(m.w.token_embd.type) &&
                      V % 2 == 0 && H % 32 == 0;
    const size_t prob_rows = bf16 || q8 ? static_cast<size_t>(pool.n_threads()) : static_cast<size_t>(sc_rows);
    if (sc_prob.size() < prob_rows * static_cast<size_t>(V)) sc_prob.resize(prob_rows * static_cast<size_t>(V));
    if (bf16 && sc_prob16.empty()) sc_prob16.resize(static_cast<size_t>(sc_rows) * static_cast<size_t>(V));
    if (q8 && qa_sc.max_rows() < sc_rows) qa_sc.reserve(sc_rows, V, /*signed_codes=*/false);
    for (int64_t t0 = 0; t0 < T; t0 += sc_rows) {
      const int64_t n = T - t0 < sc_rows ? T - t0 : sc_rows;
      clk.at(Phase::kSelfCondProbs);
      if (q8) qa_sc.begin(n, V);
      pool.parallel_for(n, [&](int64_t b, int64_t e, int tid) {
        for (int64_t t = b; t < e; ++t) {
          float* p = sc_prob.data() + (bf16 || q8 ? tid : t) * V;
          const float* l = sc_logits + (t0 + t) * V;
          softmax_row_to(l, p, V);
          if (bf16) to_bf16(p, sc_prob16.data() + t * V, V);
          if (q8) qa_sc.quantize_row(p, t);
        }
      });
      clk.at(Phase::kSelfCondSoft);
      if (q8) {
        const QuantActs qp = qa_sc.current();
        pool.parallel_for(H / 32, [&](int64_t b, int64_t e, int) {
          soft_embed_q8(m.w.token_embd, b * 32, e * 32, qp, hn.data() + t0 * H, H);
        });
      } else if (bf16) {
        const int64_t n_panels = H / 32;
        pool.parallel_for(n_panels, [&](int64_t b, int64_t e, int) {
          gemm_w_bf16(m.w.token_embd, b * 32, e * 32, sc_prob16.data(), V, n, hn.data() + t0 * H, H);
        });
      } else {
        matmul_transposed(pool, m.w.token_embd, sc_prob.data(), V, n, hn.data() + t0 * H, H, rows);
      }
    }
  }
  if (sc_logits) {
    clk.at(Phase::kSelfCondMLP);
    pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b * H; i < e * H; ++i) hn[i] *= m.embed_scale;
    });
    rms_norm(pool, hn.data(), H, hn.data(), H, T, H, m.w.sc_pre_norm.data(), eps);
    const LinearInput sc_in = linear_input(pool, hn.data(), H, T, H, qa_rows);
    matmul(pool, m.w.sc_gate, sc_in, ffn_g.data(), F, rows);
    matmul(pool, m.w.sc_up, sc_in, ffn_u.data(), F, rows);
    gelu_mul_rows(pool, ffn_g.data(), ffn_u.data(), T, F);
    matmul(pool, m.w.sc_down, linear_input(pool, ffn_g.data(), F, T, F, qa_rows), proj.data(), H, rows);
    add_rows(pool, x.data(), proj.data(), T, H);
  }
  clk.at(Phase::kSelfCondMLP);
  // Zero signal: pre_norm(0) = 0 and the gated MLP maps 0 to 0, so e + s = e exactly.
  rms_norm(pool, x.data(), H, x.data(), H, T, H, nullptr, eps);
}

}  // namespace dg

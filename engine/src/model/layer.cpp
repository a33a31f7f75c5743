// One transformer layer, shared by the encoder and decoder passes
// (DiffusionGemmaEncoderTextLayer.forward / DiffusionGemmaDecoderTextLayer.forward; they differ
// only in the attention key set, the cache write and which layer_scalar applies).
#include <cstring>

#include "cpu/activation.h"
#include "cpu/attention.h"
#include "cpu/norm.h"
#include "cpu/rope.h"
#include "model/context_impl.h"
#include "util/timing.h"

namespace dg {

void ContextImpl::layer(int64_t il, int64_t T, int64_t pos0, Pass pass) {
  const LayerWeights& L = m.w.layers[static_cast<size_t>(il)];
  const bool sliding = hp.is_sliding[static_cast<size_t>(il)];
  const int64_t H = hp.n_embd, F = hp.n_ff;
  const float eps = hp.norm_eps;
  const int64_t hd = hp.head_dim(il), n_kv = hp.n_kv_head[static_cast<size_t>(il)];
  const int64_t qw = hp.n_head * hd, kw = n_kv * hd;

  PhaseClock clk(prof);  // phase timing when profiling (diffgemma-bench), else a no-op

  // --- attention block (DiffusionGemma{Encoder,Decoder}TextAttention.forward)
  clk.at(Phase::kAttnProj);
  rms_norm(pool, x.data(), H, hn.data(), H, T, H, L.attn_norm.data(), eps);
  const LinearInput h_attn = linear_input(pool, hn.data(), H, T, H, qa_rows);
  matmul(pool, L.wq, h_attn, q.data(), qw, rows);
  matmul(pool, L.wk, h_attn, k.data(), kw, rows);
  if (!L.wv.empty()) {
    matmul(pool, L.wv, h_attn, v.data(), kw, rows);
  } else {
    std::memcpy(v.data(), k.data(), sizeof(float) * T * kw);  // K=V: raw k_proj output
  }
  rms_norm(pool, q.data(), hd, q.data(), hd, T * hp.n_head, hd, L.q_norm.data(), eps);
  rms_norm(pool, k.data(), hd, k.data(), hd, T * n_kv, hd, L.k_norm.data(), eps);
  rms_norm(pool, v.data(), hd, v.data(), hd, T * n_kv, hd, nullptr, eps);  // v_norm, no weight
  const float* cs = sliding ? cos_swa.data() : cos_full.data();
  const float* sn = sliding ? sin_swa.data() : sin_full.data();
  rope_apply(pool, q.data(), T, hp.n_head, hd, hp.n_rot(il), cs, sn);
  rope_apply(pool, k.data(), T, n_kv, hd, hp.n_rot(il), cs, sn);

  clk.at(Phase::kAttnCore);
  const AttentionShape shape{hp.n_head, n_kv, hd};
  const KVSpan fresh{k.data(), v.data(), T, pos0, kw};
  if (pass == Pass::kEncode) {
    // Causal; sliding layers see the window (cached rows are the last window-1).
    attention(pool, shape, q.data(), T, pos0, cache.span(il), fresh, AttentionMask::kCausal,
              sliding ? hp.sliding_window : 0, attn.data(), attn_scratch);
    cache.append(il, k.data(), v.data(), T, pos0);
  } else {
    // Bidirectional over cached prefix ++ canvas; the cache is read, never written.
    attention(pool, shape, q.data(), T, pos0, cache.span(il), fresh, AttentionMask::kBidirectional, 0,
              attn.data(), attn_scratch);
  }
  clk.at(Phase::kAttnProj);
  matmul(pool, L.wo, linear_input(pool, attn.data(), qw, T, qw, qa_rows), proj.data(), H, rows);
  rms_norm(pool, proj.data(), H, proj.data(), H, T, H, L.post_attn_norm.data(), eps);
  add_rows(pool, x.data(), proj.data(), T, H);

  // --- dense MLP branch (DiffusionGemmaText4MLP)
  clk.at(Phase::kDenseMLP);
  rms_norm(pool, x.data(), H, hn.data(), H, T, H, L.ffn_norm.data(), eps);
  const LinearInput h_ffn = linear_input(pool, hn.data(), H, T, H, qa_rows);
  matmul(pool, L.ffn_gate, h_ffn, ffn_g.data(), F, rows);
  matmul(pool, L.ffn_up, h_ffn, ffn_u.data(), F, rows);
  gelu_mul_rows(pool, ffn_g.data(), ffn_u.data(), T, F);
  matmul(pool, L.ffn_down, linear_input(pool, ffn_g.data(), F, T, F, qa_rows), h1.data(), H, rows);
  rms_norm(pool, h1.data(), H, h1.data(), H, T, H, L.post_ffw_norm_1.data(), eps);

  // --- MoE branch: router on the raw residual, experts on pre_feedforward_layernorm_2(x)
  clk.at(Phase::kMoERouter);
  const RouterWeights rw{L.router, L.router_scale.data(), L.expert_scale.data()};
  moe_route(pool, rw, x.data(), T, H, hp.n_expert, hp.n_expert_used, eps, r_tmp.data(), r_logit.data(),
            r_ids.data(), r_w.data(), rows);
  clk.at(Phase::kMoEExperts);
  rms_norm(pool, x.data(), H, e_in.data(), H, T, H, L.pre_ffw_norm_2.data(), eps);
  const MoEBuffers mb{xg.data(),   eg.data(),       eu.data(),      ey.data(), slot_of.data(),
                      token_of.data(), e_count.data(), &qa_slots_in, &qa_slots_mid, &qa_rows,
                      prof ? prof->expert_thread_seconds : nullptr};
  moe_experts(pool, L.experts, e_in.data(), T, hp.n_expert, hp.n_expert_used, r_ids.data(), r_w.data(), mb,
              h2.data(), rows);
  rms_norm(pool, h2.data(), H, h2.data(), H, T, H, L.post_ffw_norm_2.data(), eps);

  // --- combine, outer post-norm, residual, layer scalar
  add_rows(pool, h1.data(), h2.data(), T, H);
  rms_norm(pool, h1.data(), H, h1.data(), H, T, H, L.post_ffw_norm.data(), eps);
  const float scalar = pass == Pass::kEncode ? L.scalar_encoder : L.scalar_decoder;
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b * H; i < e * H; ++i) x[i] = (x[i] + h1[i]) * scalar;
  });
  clk.stop();
  record(il, T);
}

}  // namespace dg

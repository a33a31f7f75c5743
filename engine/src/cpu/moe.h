// The mixture-of-experts branch: router (DiffusionGemmaTextRouter) and experts
// (DiffusionGemmaTextExperts, eager implementation).
#pragma once

#include <cstdint>

#include "cpu/matmul.h"
#include "cpu/q8_acts.h"
#include "cpu/weight_view.h"

namespace dg {

class ThreadPool;

// Stacked expert matrices: expert e's rows are [e*stride, e*stride + rows) of a 3-D tensor
// viewed as 2-D. Fused gate_up: gate = the first I rows of each expert, up = the next I
// (transformers: gate, up = linear(x, gate_up_proj[e]).chunk(2)).
struct ExpertWeights {
  WeightView gate_base;  // gate rows of expert e: gate_base.rows(e * gate_stride, I)
  WeightView up_base;
  WeightView down_base;  // [E*H, I]
  int64_t gate_stride = 0, up_stride = 0, down_stride = 0;  // rows per expert
  int64_t n_ff_exp = 0, n_embd = 0;
  // NVFP4 second-level scales per expert ([E], the tensors' `.scale`), or null (1). The down
  // projection's is folded into the router's per-expert scale by the converters (gguf-layout),
  // so it has none here.
  const float* gate_scale = nullptr;
  const float* up_scale = nullptr;

  WeightView gate(int64_t e) const { return scaled(gate_base.rows(e * gate_stride, n_ff_exp), gate_scale, e); }
  WeightView up(int64_t e) const { return scaled(up_base.rows(e * up_stride, n_ff_exp), up_scale, e); }
  WeightView down(int64_t e) const { return down_base.rows(e * down_stride, n_embd); }

  static WeightView scaled(WeightView v, const float* s, int64_t e) {
    if (s) v.out_scale = s[e];
    return v;
  }
};

struct RouterWeights {
  WeightView proj;            // [E, H]
  const float* scale;         // [H]
  const float* expert_scale;  // [E] per_expert_scale
};

// Router on the raw residual x [T, H]:
//   r = rms_norm_noscale(x) * scale * H^-0.5;  p = softmax_fp32(r @ proj^T)
//   top-k of p (descending; ties to the lower id), renormalised, times per_expert_scale[id].
// tmp: [T, H]; logits: [T, E]; out ids/weights: [T, k].
void moe_route(ThreadPool& pool, const RouterWeights& rw, const float* x, int64_t n_tok, int64_t n_embd,
               int64_t n_expert, int64_t k, float eps, float* tmp, float* logits, int32_t* ids, float* weights,
               const RowScratch& scratch);

struct MoEBuffers {
  float* xg;          // [T*k, H]  expert inputs gathered by expert
  float* gate;        // [T*k, I]
  float* up;          // [T*k, I]
  float* y;           // [T*k, H]  expert outputs, same order
  int32_t* slot_of;   // [T*k]     (t*k + j) -> row in the gathered order
  int32_t* token_of;  // [T*k]     gathered row -> token
  int32_t* count;     // [E + 1]
  QuantActsBuffer* q_in;   // fast path: 8-bit xg [T*k, H]
  QuantActsBuffer* q_mid;  // fast path: 8-bit gelu(gate) * up [T*k, I]
  QuantActsBuffer* q_tok = nullptr;  // fast path: 8-bit x [T, H], gathered into q_in (else xg is)
  double* thread_seconds = nullptr;  // profiling: PhaseTimes::expert_thread_seconds (added to)
};

// out[t] = sum over the k chosen experts, in increasing expert id (the order of the eager
// index_add_), of weight * down(gelu_tanh(gate(x)) * up(x)); fp32 accumulation.
// x: [T, H] (pre_feedforward_layernorm_2 output); out: [T, H].
void moe_experts(ThreadPool& pool, const ExpertWeights& ew, const float* x, int64_t n_tok, int64_t n_expert,
                 int64_t k, const int32_t* ids, const float* weights, const MoEBuffers& buf, float* out,
                 const RowScratch& scratch);

}  // namespace dg

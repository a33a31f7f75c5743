// Context internals: the cache, the activation buffers of one pass (sized once for n_batch
// rows, never reallocated), and the passes themselves.
#pragma once

#include <memory>
#include <vector>

#include "cpu/attention.h"
#include "cpu/matmul.h"
#include "cpu/moe.h"
#include "diffgemma/context.h"
#include "model/kv_cache.h"
#include "model/model_impl.h"

namespace dg {

enum class Pass { kEncode, kDecode };

struct ContextImpl {
  ContextImpl(std::shared_ptr<const Model> model, const ContextParams& params);

  // Passes (engine/src/model/encoder.cpp, decoder.cpp, layer.cpp, self_conditioning.cpp).
  void check_ids(const int32_t* ids, int64_t n) const;
  void encode_chunk(const int32_t* ids, int64_t T);
  void decode(const int32_t* canvas, int64_t T, const float* sc_logits, float* logits);
  void embed(const int32_t* ids, int64_t T, float* out);
  void self_conditioning(const int32_t* canvas, int64_t T, const float* sc_logits);  // writes x
  void soft_embed_top_k(const float* sc_logits, int64_t T);                          // writes hn
  void layer(int64_t il, int64_t T, int64_t pos0, Pass pass);
  void record(int64_t il, int64_t T);

  std::shared_ptr<const Model> model_ref;
  const ModelImpl& m;
  const ModelHParams& hp;
  ThreadPool& pool;
  ContextParams params;
  int64_t n_batch = 0;
  int64_t n_past = 0;
  KVCache cache;

  // Activations of one pass, T <= n_batch rows. Widths: H = n_embd, F = n_ff, E = n_expert,
  // K = n_expert_used, I = n_ff_exp, QW = n_head*max head_dim, KW = max n_kv*head_dim.
  std::vector<float> x;        // [T, H]  residual stream
  std::vector<float> hn;       // [T, H]  normed input of a block / scratch
  std::vector<float> q;        // [T, QW]
  std::vector<float> k, v;     // [T, KW] this pass's keys / values
  std::vector<float> attn;     // [T, QW] attention output before o_proj
  std::vector<float> proj;     // [T, H]  block outputs
  std::vector<float> ffn_g;    // [T, F]
  std::vector<float> ffn_u;    // [T, F]
  std::vector<float> h1;       // [T, H]  dense branch
  std::vector<float> e_in;     // [T, H]  expert input
  std::vector<float> h2;       // [T, H]  MoE branch
  std::vector<float> r_tmp;    // [T, H]  router input
  std::vector<float> r_logit;  // [T, E]
  std::vector<int32_t> r_ids;  // [T, K]
  std::vector<float> r_w;      // [T, K]
  std::vector<float> xg, eg, eu, ey;       // [T*K, H], [T*K, I] x2, [T*K, H]
  std::vector<int32_t> slot_of, token_of;  // [T*K]
  std::vector<int32_t> e_count;            // [E+1]
  std::vector<float> cos_swa, sin_swa;     // [T, n_rot_swa/2]
  std::vector<float> cos_full, sin_full;   // [T, n_rot_full/2]
  int64_t sc_rows = 0;         // min(n_batch, canvas_length)
  // Softmax of the self-conditioning logits, allocated on first use (never for a context that
  // only encodes): fp32 [sc_rows, V] for the float soft embedding; for the int8 one, 8-bit codes
  // [sc_rows, V] (qa_sc) plus one fp32 row per thread; for the bf16 one, bfloat16 [sc_rows, V]
  // plus one fp32 row per thread.
  std::vector<float> sc_prob;
  std::vector<uint16_t> sc_prob16;
  QuantActsBuffer qa_sc;
  std::vector<float> row_scratch;   // [threads, widest row]
  std::vector<float> attn_scores;   // [threads, kAttentionRowBlock * most keys]
  std::vector<double> attn_acc;     // [threads, widest head]
  RowScratch rows;
  AttentionScratch attn_scratch;
  // 8-bit activations of the fast path: dense inputs [T, widest], expert inputs [T*K, H] and
  // expert hidden rows [T*K, I].
  QuantActsBuffer qa_rows, qa_slots_in, qa_slots_mid;
  PhaseTimes times;            // accumulated while profiling
  PhaseTimes* prof = nullptr;  // &times while profiling, else null (util/timing.h)
  std::vector<float> hidden;   // [L, T, H] when params.record_hidden
  int64_t hidden_rows = 0;
};

}  // namespace dg

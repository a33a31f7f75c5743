// Weight views of every tensor the text model uses (gguf-layout.md §2.1, plus the variants of
// §7.5: split expert gate/up, optional output.weight, absent attn_v = K=V full layer).
// Matrices are views into the mapping; 1-D vectors (norms, scales) are small fp32 copies.
#pragma once

#include <memory>
#include <vector>

#include "cpu/moe.h"
#include "cpu/weight_view.h"
#include "diffgemma/gguf.h"
#include "diffgemma/model.h"

namespace dg {

class ThreadPool;

struct LayerWeights {
  std::vector<float> attn_norm;        // [H] input_layernorm
  WeightView wq;                       // [n_head*hd, H]
  WeightView wk;                       // [n_kv*hd, H]
  WeightView wv;                       // [n_kv*hd, H]; empty: V = raw k_proj output (K=V layer)
  WeightView wo;                       // [H, n_head*hd]
  std::vector<float> q_norm, k_norm;   // [hd]
  std::vector<float> post_attn_norm;   // [H]
  std::vector<float> ffn_norm;         // [H] pre_feedforward_layernorm
  WeightView ffn_gate, ffn_up;         // [n_ff, H]
  WeightView ffn_down;                 // [H, n_ff]
  std::vector<float> post_ffw_norm_1;  // [H]
  std::vector<float> pre_ffw_norm_2;   // [H]
  WeightView router;                   // [E, H] router.proj
  std::vector<float> router_scale;     // [H] router.scale
  std::vector<float> expert_scale;     // [E] router.per_expert_scale
  ExpertWeights experts;               // views; gate/up scales point into the two vectors below
  std::vector<float> gate_exps_scale;  // [E] NVFP4 second-level scales, or empty
  std::vector<float> up_exps_scale;    // [E]
  std::vector<float> post_ffw_norm_2;  // [H]
  std::vector<float> post_ffw_norm;    // [H]
  float scalar_decoder = 1.0f;         // layer_output_scale (canvas passes)
  float scalar_encoder = 1.0f;         // enc_layer_output_scale (prompt / commit passes)
};

struct ModelWeights {
  WeightView token_embd;               // [V, H]
  WeightView output;                   // [V, H]: output.weight, or token_embd when tied
  std::vector<float> output_norm;      // [H]
  std::vector<float> rope_freqs;       // [head_dim_full/2] frequency divisors; empty: none
  std::vector<float> sc_pre_norm;      // [H]
  WeightView sc_gate, sc_up;           // [n_ff, H]
  WeightView sc_down;                  // [H, n_ff]
  std::vector<LayerWeights> layers;
  bool has_output = false;
  bool experts_fused = true;
  // Matrices rewritten as the int8 kernels' panels (pack_weights); their views point here.
  std::vector<std::unique_ptr<uint8_t, void (*)(void*)>> packed;
  uint64_t packed_bytes = 0;
};

// Fills hp.n_vocab from token_embd and checks every tensor's presence, type and shape.
ModelWeights load_weights(const GGUFFile& f, ModelHParams& hp);

// Whether models loaded now pack their weights: the fast kernels on an AVX-512 CPU, unless the
// environment sets DIFFGEMMA_REPACK=0.
bool weight_packing_enabled();

// Packs every matrix the int8 kernels read (the experts, the attention and MLP projections, the
// self-conditioning MLP, an untied LM head) that cpu/qpack.h has a layout for into memory owned
// by w (the size of those tensors; their file pages are released, so resident memory stays about
// the file's size). Views of other types, and the token embedding, stay in the mapping.
void pack_weights(ModelWeights& w, const GGUFFile& f, ThreadPool& pool);

}  // namespace dg

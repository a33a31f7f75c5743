#include "model/weights.h"

#include <cstdlib>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/qpack.h"
#include "quant/dequantize.h"
#include "util/thread_pool.h"

namespace dg {
namespace {

std::string shape_str(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

class Loader {
 public:
  explicit Loader(const GGUFFile& f) : f_(f) {}

  const GGUFTensor* find(const std::string& name) const { return f_.find_tensor(name); }

  // The tensor `name` with ggml shape `ne` (n dims); nullptr if absent and optional.
  const GGUFTensor* get(const std::string& name, std::initializer_list<int64_t> ne, bool optional = false) const {
    const GGUFTensor* t = f_.find_tensor(name);
    if (!t) {
      if (optional) return nullptr;
      throw Error("model file is missing tensor '" + name + "'");
    }
    const int n = static_cast<int>(ne.size());
    int64_t want[4] = {1, 1, 1, 1};
    int i = 0;
    for (int64_t v : ne) want[i++] = v;
    bool ok = true;
    for (int d = 0; d < 4; ++d) ok = ok && t->ne[d] == want[d];
    if (!ok)
      throw Error("tensor '" + name + "' has shape " + shape_str(t->ne, static_cast<int>(t->n_dims)) +
                  ", expected " + shape_str(want, n));
    if (!row_dequant_supported(t->type))
      throw Error("tensor '" + name + "' has type " + std::string(ggml_type_name(t->type)) +
                  ", which this engine cannot read (it reads " + row_dequant_supported_names() + ")");
    if (t->ne[0] % dequant_block_size(t->type) != 0)
      throw Error("tensor '" + name + "': row length " + std::to_string(t->ne[0]) + " is not a multiple of the " +
                  std::string(ggml_type_name(t->type)) + " block size");
    return t;
  }

  // A matrix (2-D, or 3-D stacked experts flattened to rows). A 2-D NVFP4 matrix takes its
  // second-level scale from `<name>.scale` [1] (absent: 1, as llama.cpp omits a scale of 1).
  WeightView matrix(const std::string& name, std::initializer_list<int64_t> ne, bool optional = false) const {
    const GGUFTensor* t = get(name, ne, optional);
    WeightView w;
    if (!t) return w;
    w.type = t->type;
    w.n_in = t->ne[0];
    w.n_out = t->ne[1] * t->ne[2] * t->ne[3];
    w.row_bytes = dequant_row_bytes(t->type, t->ne[0]);
    w.data = t->data;
    if (t->type == GGMLType::NVFP4 && t->ne[2] * t->ne[3] == 1) {
      const std::vector<float> s = vec(scale_name(name), 1, /*optional=*/true);
      if (!s.empty()) w.out_scale = s[0];
    }
    return w;
  }

  // Per-expert second-level scales of a stacked NVFP4 expert tensor ([E] `.scale`), or empty.
  std::vector<float> expert_scales(const std::string& name, const WeightView& w, int64_t E) const {
    if (w.type != GGMLType::NVFP4) return {};
    return vec(scale_name(name), E, /*optional=*/true);
  }

  // "blk.0.attn_q.weight" -> "blk.0.attn_q.scale"
  static std::string scale_name(const std::string& weight) {
    const std::string suffix = ".weight";
    return weight.substr(0, weight.size() - suffix.size()) + ".scale";
  }

  std::vector<float> vec(const std::string& name, int64_t n, bool optional = false) const {
    const GGUFTensor* t = get(name, {n}, optional);
    std::vector<float> out;
    if (!t) return out;
    out.resize(static_cast<size_t>(n));
    dequantize_row(t->type, t->data, 0, n, out.data());
    return out;
  }

 private:
  const GGUFFile& f_;
};

}  // namespace

ModelWeights load_weights(const GGUFFile& f, ModelHParams& hp) {
  Loader ld(f);
  ModelWeights w;
  const int64_t H = hp.n_embd, E = hp.n_expert, I = hp.n_ff_exp, F = hp.n_ff;

  const GGUFTensor* emb = ld.find("token_embd.weight");
  if (!emb) throw Error("model file is missing tensor 'token_embd.weight'");
  hp.n_vocab = emb->ne[1];
  w.token_embd = ld.matrix("token_embd.weight", {H, hp.n_vocab});
  w.output = ld.matrix("output.weight", {H, hp.n_vocab}, /*optional=*/true);
  w.has_output = !w.output.empty();
  if (!w.has_output) w.output = w.token_embd;
  w.output_norm = ld.vec("output_norm.weight", H);
  w.rope_freqs = ld.vec("rope_freqs.weight", hp.n_rot_full / 2, /*optional=*/true);
  w.sc_pre_norm = ld.vec("self_cond_pre_norm.weight", H);
  w.sc_gate = ld.matrix("self_cond_gate.weight", {H, F});
  w.sc_up = ld.matrix("self_cond_up.weight", {H, F});
  w.sc_down = ld.matrix("self_cond_down.weight", {F, H});

  w.experts_fused = ld.find("blk.0.ffn_gate_up_exps.weight") != nullptr;
  w.layers.resize(static_cast<size_t>(hp.n_layer));
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    LayerWeights& L = w.layers[static_cast<size_t>(il)];
    const std::string p = "blk." + std::to_string(il) + ".";
    const int64_t hd = hp.head_dim(il), nkv = hp.n_kv_head[static_cast<size_t>(il)];
    const int64_t nq = hp.n_head * hd, nk = nkv * hd;

    L.attn_norm = ld.vec(p + "attn_norm.weight", H);
    L.wq = ld.matrix(p + "attn_q.weight", {H, nq});
    L.wk = ld.matrix(p + "attn_k.weight", {H, nk});
    L.wv = ld.matrix(p + "attn_v.weight", {H, nk}, /*optional=*/true);
    L.wo = ld.matrix(p + "attn_output.weight", {nq, H});
    L.q_norm = ld.vec(p + "attn_q_norm.weight", hd);
    L.k_norm = ld.vec(p + "attn_k_norm.weight", hd);
    L.post_attn_norm = ld.vec(p + "post_attention_norm.weight", H);
    L.ffn_norm = ld.vec(p + "ffn_norm.weight", H);
    L.ffn_gate = ld.matrix(p + "ffn_gate.weight", {H, F});
    L.ffn_up = ld.matrix(p + "ffn_up.weight", {H, F});
    L.ffn_down = ld.matrix(p + "ffn_down.weight", {F, H});
    L.post_ffw_norm_1 = ld.vec(p + "post_ffw_norm_1.weight", H);
    L.pre_ffw_norm_2 = ld.vec(p + "pre_ffw_norm_2.weight", H);
    L.router = ld.matrix(p + "ffn_gate_inp.weight", {H, E});
    L.router_scale = ld.vec(p + "ffn_gate_inp.scale", H);
    L.expert_scale = ld.vec(p + "ffn_down_exps.scale", E);

    ExpertWeights& X = L.experts;
    X.n_ff_exp = I;
    X.n_embd = H;
    if (w.experts_fused) {
      X.gate_base = ld.matrix(p + "ffn_gate_up_exps.weight", {H, 2 * I, E});
      X.up_base = X.gate_base.rows(I, X.gate_base.n_out - I);
      X.gate_stride = X.up_stride = 2 * I;
      L.gate_exps_scale = ld.expert_scales(p + "ffn_gate_up_exps.weight", X.gate_base, E);
      L.up_exps_scale = L.gate_exps_scale;
    } else {
      X.gate_base = ld.matrix(p + "ffn_gate_exps.weight", {H, I, E});
      X.up_base = ld.matrix(p + "ffn_up_exps.weight", {H, I, E});
      X.gate_stride = X.up_stride = I;
      L.gate_exps_scale = ld.expert_scales(p + "ffn_gate_exps.weight", X.gate_base, E);
      L.up_exps_scale = ld.expert_scales(p + "ffn_up_exps.weight", X.up_base, E);
    }
    X.gate_scale = L.gate_exps_scale.empty() ? nullptr : L.gate_exps_scale.data();
    X.up_scale = L.up_exps_scale.empty() ? nullptr : L.up_exps_scale.data();
    X.down_base = ld.matrix(p + "ffn_down_exps.weight", {I, H, E});
    X.down_stride = H;

    L.post_ffw_norm_2 = ld.vec(p + "post_ffw_norm_2.weight", H);
    L.post_ffw_norm = ld.vec(p + "post_ffw_norm.weight", H);
    L.scalar_decoder = ld.vec(p + "layer_output_scale.weight", 1)[0];
    // Files without the encoder copy (llama.cpp PR #24427 layout) use the decoder scalar.
    const std::vector<float> enc = ld.vec(p + "enc_layer_output_scale.weight", 1, /*optional=*/true);
    L.scalar_encoder = enc.empty() ? L.scalar_decoder : enc[0];
  }
  return w;
}

namespace {

// A packed copy of matrix v (the whole stacked tensor), or v itself when it has no layout.
WeightView pack_matrix(const WeightView& v, const GGUFFile& f, ThreadPool& pool, ModelWeights& w) {
  if (!qpack_applies(v)) return v;
  const uint64_t bytes = static_cast<uint64_t>(v.n_out) * v.row_bytes;
  constexpr uint64_t kPage = 4096;
  void* mem = std::aligned_alloc(kPage, (bytes + kPage - 1) / kPage * kPage);
  if (mem == nullptr) throw Error("out of memory packing the weights (" + std::to_string(bytes) + " bytes)");
  w.packed.emplace_back(static_cast<uint8_t*>(mem), std::free);
  uint8_t* dst = w.packed.back().get();
  pool.parallel_for(v.n_out / kQNR, [&](int64_t b, int64_t e, int) { qpack_panels(v, b, e, dst); });
  f.release_pages(v.data, bytes);
  w.packed_bytes += bytes;
  WeightView p = v;
  p.data = dst;
  p.packed = true;
  return p;
}

}  // namespace

bool weight_packing_enabled() {
  const char* env = std::getenv("DIFFGEMMA_REPACK");
  if (env != nullptr && std::string(env) == "0") return false;
  return fast_path() && active_isa() >= Isa::kAVX512;
}

void pack_weights(ModelWeights& w, const GGUFFile& f, ThreadPool& pool) {
  // Dense matrices: every one the int8 kernels read through matmul(); not the token embedding
  // (rows are looked up and it is the soft embedding's matrix), nor a tied LM head.
  if (w.has_output) w.output = pack_matrix(w.output, f, pool, w);
  w.sc_gate = pack_matrix(w.sc_gate, f, pool, w);
  w.sc_up = pack_matrix(w.sc_up, f, pool, w);
  w.sc_down = pack_matrix(w.sc_down, f, pool, w);
  for (LayerWeights& L : w.layers) {
    for (WeightView* v : {&L.wq, &L.wk, &L.wv, &L.wo, &L.ffn_gate, &L.ffn_up, &L.ffn_down})
      if (!v->empty()) *v = pack_matrix(*v, f, pool, w);
  }
  for (LayerWeights& L : w.layers) {
    ExpertWeights& X = L.experts;
    // Each expert's gate, up and down rows must start and end on panel boundaries.
    const bool rows_ok = X.n_ff_exp % kQNR == 0 && X.n_embd % kQNR == 0 && X.gate_stride % kQNR == 0 &&
                         X.up_stride % kQNR == 0 && X.down_stride % kQNR == 0;
    if (!rows_ok) continue;
    if (w.experts_fused) {
      const int64_t I = X.n_ff_exp;
      X.gate_base = pack_matrix(X.gate_base, f, pool, w);
      X.up_base = X.gate_base.rows(I, X.gate_base.n_out - I);
    } else {
      X.gate_base = pack_matrix(X.gate_base, f, pool, w);
      X.up_base = pack_matrix(X.up_base, f, pool, w);
    }
    X.down_base = pack_matrix(X.down_base, f, pool, w);
  }
}

}  // namespace dg

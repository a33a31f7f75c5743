// Hyperparameters from GGUF keys (gguf-layout.md §1.1 and §1.4; accepts a scalar or a
// per-layer array for head_count_kv and sliding_window_pattern, §7.5).
#include "model/hparams.h"

#include <string>

namespace dg {
namespace {

std::string key(const char* name) { return std::string(kArch) + "." + name; }

int64_t positive(const GGUFFile& f, const std::string& k) {
  const uint64_t v = f.get_uint(k);
  if (v == 0 || v > (1ull << 40)) throw Error("model key '" + k + "' has invalid value " + std::to_string(v));
  return static_cast<int64_t>(v);
}

// A per-layer integer: a scalar for every layer or an array of n_layer values.
std::vector<int64_t> per_layer_ints(const GGUFFile& f, const std::string& k, int64_t n_layer) {
  const GGUFValue* v = f.find(k);
  if (!v) throw Error("model key '" + k + "' is missing");
  std::vector<int64_t> out;
  if (!v->is_array()) {
    if (!v->is_integer()) throw Error("model key '" + k + "' must be an integer or an array of integers");
    out.assign(static_cast<size_t>(n_layer), v->as_int());
  } else {
    if (v->count != static_cast<uint64_t>(n_layer))
      throw Error("model key '" + k + "' has " + std::to_string(v->count) + " entries, expected block_count = " +
                  std::to_string(n_layer));
    switch (v->elem_type) {
      case GGUFValueType::UINT8: case GGUFValueType::INT8: case GGUFValueType::UINT16: case GGUFValueType::INT16:
      case GGUFValueType::UINT32: case GGUFValueType::INT32: case GGUFValueType::UINT64: case GGUFValueType::INT64:
        break;
      default:
        throw Error("model key '" + k + "' must be an array of integers, got " + v->type_string());
    }
    for (uint64_t i = 0; i < v->count; ++i) out.push_back(v->elem_int(i));
  }
  return out;
}

// sliding_window_pattern: array of bools (true = sliding) or a scalar period p, where layer i
// is sliding unless (i % p) == p - 1 (p = 0: every layer sliding), llama.cpp's convention.
std::vector<bool> sliding_pattern(const GGUFFile& f, const std::string& k, int64_t n_layer) {
  const GGUFValue* v = f.find(k);
  if (!v) throw Error("model key '" + k + "' is missing");
  std::vector<bool> out(static_cast<size_t>(n_layer));
  if (v->is_array()) {
    if (v->count != static_cast<uint64_t>(n_layer))
      throw Error("model key '" + k + "' has " + std::to_string(v->count) + " entries, expected block_count = " +
                  std::to_string(n_layer));
    const bool is_bool = v->elem_type == GGUFValueType::BOOL;
    for (uint64_t i = 0; i < v->count; ++i) {
      if (is_bool) out[i] = v->elem_bool(i);
      else if (v->elem_type != GGUFValueType::STRING && v->elem_type != GGUFValueType::ARRAY &&
               v->elem_type != GGUFValueType::FLOAT32 && v->elem_type != GGUFValueType::FLOAT64)
        out[i] = v->elem_int(i) != 0;
      else throw Error("model key '" + k + "' must be an array of bools, got " + v->type_string());
    }
  } else if (v->is_integer()) {
    const int64_t p = v->as_int();
    for (int64_t i = 0; i < n_layer; ++i) out[static_cast<size_t>(i)] = p <= 0 || (i % p) < p - 1;
  } else {
    throw Error("model key '" + k + "' must be a bool array or an integer period, got " + v->type_string());
  }
  return out;
}

}  // namespace

ModelHParams load_hparams(const GGUFFile& f) {
  const GGUFValue* arch = f.find("general.architecture");
  if (!arch || arch->type != GGUFValueType::STRING)
    throw Error("not a DiffusionGemma model: general.architecture is missing");
  if (arch->str != kArch)
    throw Error("not a DiffusionGemma model: general.architecture is '" + std::string(arch->str) +
                "', expected '" + kArch + "'");

  ModelHParams hp;
  hp.n_layer = positive(f, key("block_count"));
  hp.n_embd = positive(f, key("embedding_length"));
  hp.n_head = positive(f, key("attention.head_count"));
  hp.n_ff = positive(f, key("feed_forward_length"));
  hp.n_expert = positive(f, key("expert_count"));
  hp.n_expert_used = positive(f, key("expert_used_count"));
  hp.n_ff_exp = positive(f, key("expert_feed_forward_length"));
  hp.head_dim_full = positive(f, key("attention.key_length"));
  hp.head_dim_swa = positive(f, key("attention.key_length_swa"));
  if (f.get_uint_or(key("attention.value_length"), hp.head_dim_full) != static_cast<uint64_t>(hp.head_dim_full) ||
      f.get_uint_or(key("attention.value_length_swa"), hp.head_dim_swa) != static_cast<uint64_t>(hp.head_dim_swa))
    throw Error("model keys: value_length must equal key_length (full and sliding layers)");
  hp.n_rot_full = static_cast<int64_t>(f.get_uint_or(key("rope.dimension_count"), hp.head_dim_full));
  hp.n_rot_swa = static_cast<int64_t>(f.get_uint_or(key("rope.dimension_count_swa"), hp.head_dim_swa));
  if (hp.n_rot_full <= 0 || hp.n_rot_full > hp.head_dim_full || hp.n_rot_full % 2 ||
      hp.n_rot_swa <= 0 || hp.n_rot_swa > hp.head_dim_swa || hp.n_rot_swa % 2)
    throw Error("model keys: rope.dimension_count(_swa) must be even and at most the head dim");
  hp.rope_base_full = static_cast<float>(f.get_float(key("rope.freq_base")));
  hp.rope_base_swa = static_cast<float>(f.get_float_or(key("rope.freq_base_swa"), 10000.0));
  hp.norm_eps = static_cast<float>(f.get_float(key("attention.layer_norm_rms_epsilon")));
  hp.logit_softcap = static_cast<float>(f.get_float_or(key("final_logit_softcapping"), 0.0));
  hp.sliding_window = positive(f, key("attention.sliding_window"));
  hp.canvas_length = static_cast<int64_t>(f.get_uint("diffusion.canvas_length"));
  if (hp.canvas_length <= 0) throw Error("model key 'diffusion.canvas_length' must be > 0");
  hp.n_ctx_train = static_cast<int64_t>(f.get_uint_or(key("context_length"), 0));

  hp.n_kv_head = per_layer_ints(f, key("attention.head_count_kv"), hp.n_layer);
  hp.is_sliding = sliding_pattern(f, key("attention.sliding_window_pattern"), hp.n_layer);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const int64_t kv = hp.n_kv_head[static_cast<size_t>(il)];
    if (kv <= 0 || hp.n_head % kv != 0)
      throw Error("model key 'attention.head_count_kv': layer " + std::to_string(il) + " has " + std::to_string(kv) +
                  " kv heads, which must divide head_count = " + std::to_string(hp.n_head));
  }
  if (hp.n_expert_used > hp.n_expert) throw Error("model keys: expert_used_count > expert_count");
  return hp;
}

}  // namespace dg

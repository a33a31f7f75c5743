// A DiffusionGemma model loaded from a GGUF file: hyperparameters and weight views into the
// mapped file (weights are never copied), plus the thread pool its contexts compute on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dg {

// Hyperparameters read from the GGUF keys (gguf-layout.md §1.1, §1.4).
struct ModelHParams {
  int64_t n_vocab = 0;          // rows of token_embd
  int64_t n_embd = 0;           // H
  int64_t n_layer = 0;
  int64_t n_head = 0;           // query heads, every layer
  int64_t n_ff = 0;             // dense MLP and self-conditioning MLP width
  int64_t n_expert = 0;         // E
  int64_t n_expert_used = 0;    // top-k
  int64_t n_ff_exp = 0;         // I, per-expert width
  int64_t head_dim_full = 0;    // attention.key_length
  int64_t head_dim_swa = 0;     // attention.key_length_swa
  int64_t n_rot_full = 0;       // rope.dimension_count
  int64_t n_rot_swa = 0;        // rope.dimension_count_swa
  float rope_base_full = 0.0f;  // rope.freq_base
  float rope_base_swa = 0.0f;   // rope.freq_base_swa
  float norm_eps = 0.0f;
  float logit_softcap = 0.0f;   // 0: none
  int64_t sliding_window = 0;   // encoder window w; sliding layers cache w-1 keys
  int64_t canvas_length = 0;
  int64_t n_ctx_train = 0;
  std::vector<int64_t> n_kv_head;  // per layer
  std::vector<bool> is_sliding;    // per layer

  int64_t head_dim(int64_t il) const { return is_sliding[il] ? head_dim_swa : head_dim_full; }
  int64_t n_rot(int64_t il) const { return is_sliding[il] ? n_rot_swa : n_rot_full; }
};

struct ModelImpl;  // weights and thread pool (engine/src/model/model_impl.h)

class Model {
 public:
  // Maps and validates `path`. n_threads <= 0: one per physical core. Throws dg::Error naming
  // the key or tensor at fault (missing, wrong shape or type, wrong architecture).
  static std::shared_ptr<Model> load(const std::string& path, int n_threads = 0);
  ~Model();

  const ModelHParams& hparams() const;
  int n_threads() const;
  const std::string& path() const;
  bool has_output_weight() const;  // a separate output.weight (else tied to token_embd)
  bool experts_fused() const;      // ffn_gate_up_exps (else ffn_gate_exps + ffn_up_exps)
  uint64_t packed_bytes() const;   // expert weights held as the int8 kernels' panels (0: none)
  std::string weight_type_name() const;  // type of attn_q of layer 0, e.g. "Q8_0"

  const ModelImpl& impl() const { return *impl_; }

 private:
  Model() = default;
  std::unique_ptr<ModelImpl> impl_;
};

}  // namespace dg

#include "diffgemma/model.h"

#include <cmath>

#include "cpu/rope.h"
#include "model/hparams.h"
#include "model/model_impl.h"
#include "quant/dequantize.h"

namespace dg {

std::shared_ptr<Model> Model::load(const std::string& path, int n_threads) {
  auto impl = std::make_unique<ModelImpl>();
  impl->file = GGUFFile::open(path);
  impl->hp = load_hparams(*impl->file);
  impl->w = load_weights(*impl->file, impl->hp);
  impl->pool = std::make_unique<ThreadPool>(n_threads);
  if (weight_packing_enabled()) pack_weights(impl->w, *impl->file, *impl->pool);
  const ModelHParams& hp = impl->hp;
  impl->inv_freq_swa = rope_inv_freq(hp.rope_base_swa, hp.n_rot_swa, nullptr);
  impl->inv_freq_full = rope_inv_freq(hp.rope_base_full, hp.n_rot_full,
                                      impl->w.rope_freqs.empty() ? nullptr : impl->w.rope_freqs.data());
  impl->embed_scale = static_cast<float>(std::sqrt(static_cast<double>(hp.n_embd)));
  std::shared_ptr<Model> m(new Model());
  m->impl_ = std::move(impl);
  return m;
}

Model::~Model() = default;

const ModelHParams& Model::hparams() const { return impl_->hp; }
int Model::n_threads() const { return impl_->pool->n_threads(); }
const std::string& Model::path() const { return impl_->file->path(); }
bool Model::has_output_weight() const { return impl_->w.has_output; }
bool Model::experts_fused() const { return impl_->w.experts_fused; }
uint64_t Model::packed_bytes() const { return impl_->w.packed_bytes; }
std::string Model::weight_type_name() const {
  return std::string(ggml_type_name(impl_->w.layers.at(0).wq.type));
}

}  // namespace dg

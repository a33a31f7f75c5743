#pragma once

#include <memory>
#include <vector>

#include "diffgemma/gguf.h"
#include "diffgemma/model.h"
#include "model/weights.h"
#include "util/thread_pool.h"

namespace dg {

struct ModelImpl {
  std::shared_ptr<GGUFFile> file;  // owns the mapping every WeightView points into
  ModelHParams hp;
  ModelWeights w;
  std::vector<float> inv_freq_swa;   // [n_rot_swa/2]
  std::vector<float> inv_freq_full;  // [n_rot_full/2], rope_freqs applied
  float embed_scale = 1.0f;          // fp32(sqrt(H)) (DiffusionGemmaTextScaledWordEmbedding)
  std::unique_ptr<ThreadPool> pool;  // mutable work, shared by the model's contexts
};

}  // namespace dg

#pragma once

#include "diffgemma/gguf.h"
#include "diffgemma/model.h"

namespace dg {

constexpr const char* kArch = "diffusion-gemma";

// Reads and checks every hyperparameter key (n_vocab is filled in from token_embd later).
ModelHParams load_hparams(const GGUFFile& f);

}  // namespace dg

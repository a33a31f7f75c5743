// Generation defaults read from the GGUF: diffusion.eb_* keys, EOS and pad ids.
#include <algorithm>
#include <cmath>
#include <string>

#include "diffgemma/generate.h"
#include "diffgemma/gguf.h"
#include "model/model_impl.h"

namespace dg {

DiffusionParams DiffusionParams::from_model(const Model& model) {
  const GGUFFile& f = *model.impl().file;
  DiffusionParams p;
  p.max_denoising_steps = static_cast<int32_t>(f.get_uint_or("diffusion.eb_max_steps", 48));
  p.t_min = static_cast<float>(f.get_float_or("diffusion.eb_t_min", 0.4));
  p.t_max = static_cast<float>(f.get_float_or("diffusion.eb_t_max", 0.8));
  p.entropy_bound = static_cast<float>(f.get_float_or("diffusion.eb_entropy_bound", 0.1));
  p.stability_threshold = static_cast<int32_t>(f.get_uint_or("diffusion.eb_stability_threshold", 1));
  p.confidence_threshold = static_cast<float>(f.get_float_or("diffusion.eb_confidence_threshold", 0.005));
  return p;
}

std::string DiffusionParams::validate() const {
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return std::string(buf);
  };
  if (max_denoising_steps <= 0)
    return "max_denoising_steps must be a positive integer (got " + std::to_string(max_denoising_steps) + ")";
  if (!std::isfinite(t_min) || t_min < 0) return "t_min must be >= 0 (got " + num(t_min) + ")";
  if (!std::isfinite(t_max) || t_max < 0) return "t_max must be >= 0 (got " + num(t_max) + ")";
  // transformers refuses t_max <= t_min; a constant temperature (t_min == t_max, --temp) is allowed
  // here because the schedule formula is well defined for it.
  if (t_max < t_min) return "t_max must be >= t_min (got t_min " + num(t_min) + ", t_max " + num(t_max) + ")";
  if (t_max == 0) return "the temperature must be > 0 at every step (t_max is 0)";
  if (!std::isfinite(entropy_bound) || entropy_bound <= 0)
    return "entropy_bound must be > 0 (got " + num(entropy_bound) + ")";
  if (stability_threshold < 0)
    return "stability_threshold must be an integer >= 0 (got " + std::to_string(stability_threshold) + ")";
  if (!(confidence_threshold > 0)) return "confidence_threshold must be > 0 (got " + num(confidence_threshold) + ")";
  return "";
}

std::vector<int32_t> default_eos_ids(const Model& model) {
  const GGUFFile& f = *model.impl().file;
  std::vector<int32_t> ids;
  const int64_t V = model.hparams().n_vocab;
  if (const GGUFValue* v = f.find("tokenizer.ggml.eos_token_id"); v && v->is_integer()) {
    const int64_t id = v->as_int();
    if (id >= 0 && id < V) ids.push_back(static_cast<int32_t>(id));
  }
  // End-of-generation tokens found by their text, as llama.cpp's vocabulary loader does.
  if (const GGUFValue* tokens = f.find("tokenizer.ggml.tokens"); tokens && tokens->is_array()) {
    for (size_t i = 0; i < tokens->strings.size() && static_cast<int64_t>(i) < V; ++i) {
      const std::string_view s = tokens->strings[i];
      if (s == "<turn|>" || s == "<|tool_response>") ids.push_back(static_cast<int32_t>(i));
    }
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

int32_t default_pad_id(const Model& model) {
  const GGUFValue* v = model.impl().file->find("tokenizer.ggml.padding_token_id");
  if (!v || !v->is_integer()) return -1;
  const int64_t id = v->as_int();
  return id >= 0 && id < model.hparams().n_vocab ? static_cast<int32_t>(id) : -1;
}

}  // namespace dg

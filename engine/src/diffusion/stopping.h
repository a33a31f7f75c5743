// StableAndConfidentStoppingCriteria: a canvas is done when its argmax canvas has equalled each of
// the last `stability_threshold` argmax canvases (the history starts invalid, so the first step is
// never stable unless the threshold is 0) and the mean entropy of the scaled logits is below
// `confidence_threshold`. The history buffer is sized once per generation.
#pragma once

#include <cstdint>
#include <vector>

namespace dg::diffusion {

class StableAndConfident {
 public:
  void reset(int32_t stability_threshold, float confidence_threshold, int32_t C);
  // Call once per step, in order; returns true when the canvas should stop after this step.
  bool update(const int32_t* argmax, const float* entropy);
  float last_mean_entropy() const { return mean_entropy_; }

 private:
  int32_t S_ = 1;
  float Q_ = 0.005f;
  int32_t C_ = 0;
  std::vector<int32_t> hist_;  // S_ canvases of C_ ids, ring buffer; -1 = invalid
  int32_t head_ = 0;           // oldest entry
  float mean_entropy_ = 0.0f;
};

}  // namespace dg::diffusion

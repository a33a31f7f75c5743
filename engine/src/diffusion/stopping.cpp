#include "diffusion/stopping.h"

#include <algorithm>
#include <cstring>

namespace dg::diffusion {

void StableAndConfident::reset(int32_t stability_threshold, float confidence_threshold, int32_t C) {
  S_ = stability_threshold;
  Q_ = confidence_threshold;
  C_ = C;
  hist_.assign(static_cast<size_t>(S_) * static_cast<size_t>(C_), -1);
  head_ = 0;
  mean_entropy_ = 0.0f;
}

bool StableAndConfident::update(const int32_t* argmax, const float* entropy) {
  bool stable = true;
  if (S_ > 0) {
    const size_t row = static_cast<size_t>(C_) * sizeof(int32_t);
    for (int32_t k = 0; k < S_ && stable; ++k)
      stable = std::memcmp(hist_.data() + static_cast<size_t>(k) * C_, argmax, row) == 0;
    // torch.roll(-1) then history[-1] = argmax: overwrite the oldest entry.
    std::memcpy(hist_.data() + static_cast<size_t>(head_) * C_, argmax, row);
    head_ = (head_ + 1) % S_;
  }
  // torch.mean over fp32 entropies, compared in fp32 with the Python float threshold.
  double sum = 0.0;
  for (int32_t i = 0; i < C_; ++i) sum += static_cast<double>(entropy[i]);
  mean_entropy_ = static_cast<float>(sum) / static_cast<float>(C_);
  const bool confident = mean_entropy_ < Q_;
  return stable && confident;
}

}  // namespace dg::diffusion

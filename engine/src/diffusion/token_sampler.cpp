// Mirrors, per position, what _denoising_step computes over the whole canvas:
//   processed = logits / t                      (LinearTemperatureScheduleLogitsProcessor)
//   probs     = softmax(processed, fp32)        -> multinomial (here: the shared stream)
//   argmax    = argmax(processed)               first index on ties, as torch.argmax
//   entropy   = Categorical(logits=processed).entropy():
//               lp = processed - logsumexp(processed); lp = max(lp, finfo.min); H = -Σ exp(lp) lp
// Sums are accumulated in fp64 and rounded once; torch's fp32 reductions differ from these by
// about an ulp, which matters only when a value lands exactly on a decision boundary.
#include "diffusion/token_sampler.h"

#include <cfloat>
#include <cmath>

namespace dg::diffusion {

int32_t sample_categorical(const float* p, int64_t V, double u) {
  double total = 0.0;
  for (int64_t i = 0; i < V; ++i) total += static_cast<double>(p[i]);
  const double threshold = u * total;
  double cum = 0.0;
  for (int64_t i = 0; i < V; ++i) {
    cum += static_cast<double>(p[i]);
    if (cum > threshold) return static_cast<int32_t>(i);
  }
  for (int64_t i = V - 1; i >= 0; --i)
    if (p[i] > 0.0f) return static_cast<int32_t>(i);
  return 0;  // all zero: cannot happen for a softmax (its maximum is exp(0) = 1 before scaling)
}

RowResult process_row(float* l, int64_t V, float t, double u, float* p) {
  RowResult r;
  float m = -INFINITY;
  for (int64_t i = 0; i < V; ++i) {
    l[i] = l[i] / t;
    if (l[i] > m) {
      m = l[i];
      r.argmax = static_cast<int32_t>(i);
    }
  }
  double sum = 0.0;
  for (int64_t i = 0; i < V; ++i) {
    p[i] = std::exp(l[i] - m);
    sum += static_cast<double>(p[i]);
  }
  const float inv = static_cast<float>(1.0 / sum);
  const float lse = m + static_cast<float>(std::log(sum));
  double h = 0.0;
  for (int64_t i = 0; i < V; ++i) {
    p[i] *= inv;
    float lp = l[i] - lse;
    if (lp < -FLT_MAX) lp = -FLT_MAX;
    h -= static_cast<double>(lp) * static_cast<double>(p[i]);
  }
  r.entropy = static_cast<float>(h);
  r.sample = sample_categorical(p, V, u);
  return r;
}

}  // namespace dg::diffusion

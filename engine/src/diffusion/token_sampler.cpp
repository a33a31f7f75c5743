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

#include "cpu/vecmath.h"

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

namespace {
constexpr int64_t kSampleBlock = 1024;  // values per block sum of the fast sampler
}

int64_t process_row_fast_scratch(int64_t V) { return V + V / kSampleBlock + 16; }

RowResult process_row_fast(float* l, int64_t V, float t, double u, float* scratch) {
  RowResult r;
  int64_t am = 0;
  const float m = scale_max_argmax(l, V, t, &am);
  r.argmax = static_cast<int32_t>(am);
  float* e = scratch;
  float* block_sums = scratch + V;
  float sum = 0.0f, sum_ex = 0.0f;
  exp_sums(l, V, m, e, &sum, &sum_ex, block_sums, kSampleBlock);
  r.entropy = static_cast<float>(std::log(static_cast<double>(sum)) - static_cast<double>(sum_ex) / sum);
  // The smallest i with cumsum(e)[i] > u * sum: whole blocks by their sums, then one block element
  // by element (its exact running sum carries on if the crossing is not inside it after all).
  const double target = u * static_cast<double>(sum);
  double cum = 0.0;
  for (int64_t b0 = 0, bi = 0; b0 < V; b0 += kSampleBlock, ++bi) {
    const int64_t b1 = b0 + kSampleBlock < V ? b0 + kSampleBlock : V;
    if (cum + static_cast<double>(block_sums[bi]) <= target) {
      cum += static_cast<double>(block_sums[bi]);
      continue;
    }
    for (int64_t i = b0; i < b1; ++i) {
      cum += static_cast<double>(e[i]);
      if (cum > target) {
        r.sample = static_cast<int32_t>(i);
        return r;
      }
    }
  }
  for (int64_t i = V - 1; i >= 0; --i) {
    if (e[i] > 0.0f) {
      r.sample = static_cast<int32_t>(i);
      return r;
    }
  }
  return r;
}

}  // namespace dg::diffusion

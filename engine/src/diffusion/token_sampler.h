// Per-position work of one denoising step, on one row of logits [V]:
// temperature scaling, argmax, entropy (torch.distributions.Categorical(logits=l).entropy()) and
// the categorical sample drawn with the shared random stream (model-spec §10.2).
#pragma once

#include <cstdint>

namespace dg::diffusion {

struct RowResult {
  int32_t argmax = 0;   // first index of the maximum of the scaled logits
  int32_t sample = 0;   // categorical sample of softmax(scaled logits)
  float entropy = 0;    // of softmax(scaled logits), nats
};

// Scales `logits` in place by 1/t (an fp32 division, as `scores / temperature`), then computes the
// row's argmax, entropy and sample. u in [0, 1) is the stream-1 uniform of this position; `scratch`
// holds V floats (the row's probabilities on return).
RowResult process_row(float* logits, int64_t V, float t, double u, float* scratch);

// The fast path's form of process_row: fused vector passes (scale + max + argmax; exp + sums +
// block sums), the entropy as log(S) - sum(e (l - m)) / S, and the sample found through block
// sums. Same contract; `scratch` holds process_row_fast_scratch(V) floats (exp(l - m) on return).
RowResult process_row_fast(float* logits, int64_t V, float t, double u, float* scratch);
int64_t process_row_fast_scratch(int64_t V);

// Categorical sample from probabilities p[V] (not necessarily normalised): the smallest i whose
// sequential fp64 running sum exceeds u * total; if rounding leaves none, the last i with p[i] > 0.
int32_t sample_categorical(const float* p, int64_t V, double u);

}  // namespace dg::diffusion

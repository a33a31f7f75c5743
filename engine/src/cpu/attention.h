// Scaled-dot-product attention with scale 1.0 (q_norm/k_norm replace 1/sqrt(d)), GQA and the
// key sets of model-spec §4.2/§4.3. Mirrors transformers eager_attention_forward: fp32 scores,
// fp32 softmax, then P @ V.
#pragma once

#include <cstdint>

namespace dg {

class ThreadPool;

// Keys/values of consecutive positions [pos0, pos0 + len): row i at k + i*ld (ld = n_kv*head_dim).
struct KVSpan {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t len = 0;
  int64_t pos0 = 0;
  int64_t ld = 0;
};

struct AttentionShape {
  int64_t n_head = 0;     // query heads
  int64_t n_kv_head = 0;  // query head h reads kv head h / (n_head / n_kv_head)  (repeat_kv)
  int64_t head_dim = 0;
};

enum class AttentionMask {
  kCausal,         // encoder: key pos <= query pos, and > query pos - window when window > 0
  kBidirectional,  // decoder: every key of both spans
};

// q: [n_q, n_head*head_dim] at positions [q_pos0, q_pos0+n_q); out: same shape.
// Keys are the concatenation cached ++ fresh (cached positions precede fresh ones).
// Per-thread scratch: scores of at least kAttentionRowBlock * (cached.len + fresh.len) floats,
// and head_dim doubles for the reference P @ V accumulator.
//
// Fast path (cpu_features.h, default): per (head, block of kAttentionRowBlock queries), the
// scores block S = Q K^T and the output P V are GEMMs (gemm.h) over the visible keys of the
// cache and the canvas in place (the canvas K/V are never written to the cache); masked keys
// get probability 0. Reference path (DIFFGEMMA_KERNELS=reference): one query and head at a time.
constexpr int64_t kAttentionRowBlock = 64;
struct AttentionScratch {
  float* scores = nullptr;
  int64_t scores_per_thread = 0;
  double* acc = nullptr;
  int64_t acc_per_thread = 0;
};
void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t n_q, int64_t q_pos0,
               const KVSpan& cached, const KVSpan& fresh, AttentionMask mask, int64_t window, float* out,
               const AttentionScratch& scratch);

}  // namespace dg

// Rotary position embedding, NeoX (half-split) layout: dimension j pairs with j + n_rot/2
// (transformers rotate_half / apply_rotary_pos_emb). Dimensions past n_rot pass through.
#pragma once

#include <cstdint>
#include <vector>

namespace dg {

class ThreadPool;

// inv_freq[j] = base^(-2j/n_rot) / freq_factor[j], j < n_rot/2, in fp32 like
// _compute_default/proportional_rope_parameters. freq_factors (rope_freqs.weight, may be null)
// switch dimensions off with huge divisors: that is how proportional partial RoPE is stored.
std::vector<float> rope_inv_freq(float base, int64_t n_rot, const float* freq_factors);

// cos/sin tables for n_pos positions starting at pos0: [n_pos, n_rot/2] each.
void rope_tables(const std::vector<float>& inv_freq, int64_t pos0, int64_t n_pos, float* cos_out,
                 float* sin_out);

// x: [n_tok, n_heads, head_dim] rows of ld = n_heads*head_dim; rotated in place.
void rope_apply(ThreadPool& pool, float* x, int64_t n_tok, int64_t n_heads, int64_t head_dim,
                int64_t n_rot, const float* cos_t, const float* sin_t);

}  // namespace dg

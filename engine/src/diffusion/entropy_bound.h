// Entropy-bound acceptance (EntropyBoundSampler.accept_canvas): sort the positions by entropy,
// ascending, and accept the k-th when (cumsum of the sorted entropies up to k) - (its own) <= bound.
// The first sorted position is always accepted.
//
// Ties (entropies exactly equal) decide which of two positions is accepted when the bound falls
// between them. torch.sort(stable=False) on CPU is std::sort over (value, index) pairs with the
// comparator "a < b (NaN last)"; we run the same std::sort on the same pairs, so the order of tied
// positions is torch's (checked against torch.sort on tie-heavy vectors in the parity tests). A
// standard library other than libstdc++ would break such ties differently; ties among zero
// entropies never matter (they are all accepted).
#pragma once

#include <cstdint>
#include <vector>

namespace dg::diffusion {

struct EntropyOrderItem {
  float entropy;
  int32_t pos;
};

// torch.sort(entropy, ascending) indices, into `order` (resized once, reused).
void sort_by_entropy(const float* entropy, int32_t C, std::vector<EntropyOrderItem>& order);

// Fills accepted[C] (1 = take the sample, 0 = renoise); returns the number accepted.
// `order` is scratch of C items.
int32_t accept_by_entropy_bound(const float* entropy, int32_t C, float bound, uint8_t* accepted,
                                std::vector<EntropyOrderItem>& order);

}  // namespace dg::diffusion

#include "diffusion/entropy_bound.h"

#include <algorithm>
#include <cmath>

namespace dg::diffusion {

void sort_by_entropy(const float* entropy, int32_t C, std::vector<EntropyOrderItem>& order) {
  order.resize(static_cast<size_t>(C));
  for (int32_t i = 0; i < C; ++i) order[static_cast<size_t>(i)] = {entropy[i], i};
  // at::native KeyValueCompAsc: NaN sorts last.
  std::sort(order.begin(), order.end(), [](const EntropyOrderItem& a, const EntropyOrderItem& b) {
    return (!std::isnan(a.entropy) && std::isnan(b.entropy)) || (a.entropy < b.entropy);
  });
}

int32_t accept_by_entropy_bound(const float* entropy, int32_t C, float bound, uint8_t* accepted,
                                std::vector<EntropyOrderItem>& order) {
  sort_by_entropy(entropy, C, order);
  // torch.cumsum on CPU accumulates fp32 in fp64 and rounds each output to fp32; the subtraction
  // and the comparison against the Python float bound happen in fp32.
  double cum = 0.0;
  int32_t n = 0;
  for (const EntropyOrderItem& it : order) {
    cum += static_cast<double>(it.entropy);
    const float excess = static_cast<float>(cum) - it.entropy;
    const bool ok = excess <= bound;
    accepted[it.pos] = ok ? 1 : 0;
    n += ok ? 1 : 0;
  }
  return n;
}

}  // namespace dg::diffusion

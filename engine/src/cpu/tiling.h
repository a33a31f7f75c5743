// Row tiling shared by the register-tiled GEMM kernels.
#pragma once

#include <algorithm>
#include <cstdint>

namespace dg {

// Rows of the next tile when `left` rows remain and tiles hold at most `mr_max`: the remaining
// rows split into equal tiles (16 rows: 8 + 8, not 12 + 4), so small expert batches keep the
// kernels' load/FMA balance. Tiling never changes results (one accumulation chain per output).
inline int tile_rows(int64_t left, int mr_max) {
  const int64_t tiles = (left + mr_max - 1) / mr_max;
  return static_cast<int>((left + tiles - 1) / tiles);
}

// The next chunk of a packed matrix fetched into L2 while this one computes: an equal share of
// its cache lines before each of the chunk's row tiles (prefetching inside the micro-kernels
// costs them a fifth of their speed: it takes registers the accumulators need).
class TilePrefetch {
 public:
  TilePrefetch(const uint8_t* p, int64_t lines, int64_t n_tiles)
      : p_(p), lines_(p ? lines : 0), per_(p && n_tiles > 0 ? (lines + n_tiles - 1) / n_tiles : 0) {}
  void before_tile() {
    for (const int64_t end = std::min(next_ + per_, lines_); next_ < end; ++next_)
      __builtin_prefetch(p_ + next_ * 64, 0, 2);  // prefetcht1 on x86
  }

 private:
  const uint8_t* p_;
  int64_t lines_, per_, next_ = 0;
};

}  // namespace dg

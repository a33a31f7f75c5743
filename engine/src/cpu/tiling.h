// Row tiling shared by the register-tiled GEMM kernels.
#pragma once

#include <cstdint>

namespace dg {

// Rows of the next tile when `left` rows remain and tiles hold at most `mr_max`: the remaining
// rows split into equal tiles (16 rows: 8 + 8, not 12 + 4), so small expert batches keep the
// kernels' load/FMA balance. Tiling never changes results (one accumulation chain per output).
inline int tile_rows(int64_t left, int mr_max) {
  const int64_t tiles = (left + mr_max - 1) / mr_max;
  return static_cast<int>((left + tiles - 1) / tiles);
}

}  // namespace dg

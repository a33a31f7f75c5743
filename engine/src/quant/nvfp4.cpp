// GGML NVFP4 (type 40): 64 values = 4 sub-blocks of 16 E2M1 codes, each sub-block with an E4M3
// scale byte; a second-level fp32 scale s2 per tensor (or per expert) lives in a `.scale` tensor.
// Decoded block value = E2M1[code] * E4M3(d) (ggml writes it as kvalue * 0.5 * E4M3; same number),
// the full weight = that * s2. See ../shared/docs/nvfp4.md §3 and blocks.h for the layout.
//
// Quantizer (two-level, nvfp4.md §4): sub-block scales that put the largest value on E2M1's 6, 4
// or 3, and the E4M3 codes next to them (and 0), are each tried; codes are the nearest E2M1
// values; the scale with the least squared error of the exactly decoded values (times s2) wins.
#include <algorithm>
#include <array>
#include <cmath>

#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/scalars.h"

namespace dg::quant {
namespace {

constexpr int kSub = 16;         // values per scale
constexpr int kMaxE4M3Code = 126;  // 448; 127 is nan

// E4M3 values of codes 0..126, increasing.
const std::array<float, kMaxE4M3Code + 1>& e4m3_table() {
  static const std::array<float, kMaxE4M3Code + 1> table = [] {
    std::array<float, kMaxE4M3Code + 1> t{};
    for (int c = 0; c <= kMaxE4M3Code; ++c) t[c] = e4m3_to_f32(static_cast<uint8_t>(c));
    return t;
  }();
  return table;
}

// Nearest E2M1 magnitude index (0..7 for 0, .5, 1, 1.5, 2, 3, 4, 6) of |u|, ties to the even index.
int e2m1_index(float a) {
  static const float bounds[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  int i = 0;
  while (i < 7 && a > bounds[i]) ++i;
  if (i < 7 && a == bounds[i] && (i & 1)) ++i;  // at a tie the loop stopped below: go up if odd
  return i;
}

// Encodes 16 values with scale code c; returns the squared error of the decode times s2.
double encode_sub(const float* x, int c, float s2, uint8_t* codes) {
  const float scale = e4m3_table()[c];
  const float half_scale = scale * 0.5f;  // gguf-py's decoded d
  const float unit = scale * s2;
  const float inv = unit > 0 ? 1.0f / unit : 0.0f;
  double err = 0;
  for (int i = 0; i < kSub; ++i) {
    const int idx = unit > 0 ? e2m1_index(std::fabs(x[i]) * inv) : 0;
    const int code = idx == 0 ? 0 : (x[i] < 0 ? idx | 8 : idx);
    codes[i] = static_cast<uint8_t>(code);
    const float y = (half_scale * static_cast<float>(kFP4Doubled[code])) * s2;
    const double e = static_cast<double>(x[i]) - y;
    err += e * e;
  }
  return err;
}

}  // namespace

void dequantize_nvfp4(const void* src, float* dst, int64_t n_blocks) {
  const auto* b = static_cast<const BlockNVFP4*>(src);
  for (int64_t k = 0; k < n_blocks; ++k, dst += kQKNV) {
    for (int s = 0; s < 4; ++s) {
      const float d = ue4m3_to_f32(b[k].d[s]);
      for (int j = 0; j < 8; ++j) {
        const uint8_t byte = b[k].qs[8 * s + j];
        dst[16 * s + j] = d * static_cast<float>(kFP4Doubled[byte & 15]);
        dst[16 * s + j + 8] = d * static_cast<float>(kFP4Doubled[byte >> 4]);
      }
    }
  }
}

void quantize_nvfp4(const float* src, void* dst, int64_t n_blocks, const QuantizeOptions& opt) {
  const float s2 = opt.nvfp4_scale;
  const auto& table = e4m3_table();
  auto* b = static_cast<BlockNVFP4*>(dst);
  for (int64_t k = 0; k < n_blocks; ++k, src += kQKNV) {
    for (int s = 0; s < 4; ++s) {
      const float* x = src + kSub * s;
      float amax = 0;
      for (int i = 0; i < kSub; ++i) amax = std::max(amax, std::fabs(x[i]));
      uint8_t best_codes[kSub] = {}, codes[kSub];
      int best_c = 0;
      double best_err = 0;
      for (int i = 0; i < kSub; ++i) best_err += static_cast<double>(x[i]) * x[i];  // c = 0: all zero
      if (amax > 0 && s2 > 0) {
        // The largest value on E2M1's 6, 4 or 3 (the last two leave headroom: "4/6" scaling),
        // each with the neighbouring scale codes.
        int tried_lo = kMaxE4M3Code + 1, tried_hi = -1;
        for (const float top : {6.0f, 4.0f, 3.0f}) {
          const float ideal = amax / (top * s2);
          const int c0 = static_cast<int>(std::lower_bound(table.begin() + 1, table.end(), ideal) - table.begin());
          for (int c = std::max(c0 - 2, 1); c <= std::min(c0 + 2, kMaxE4M3Code); ++c) {
            if (c >= tried_lo && c <= tried_hi) continue;  // ranges overlap: each code once
            const double err = encode_sub(x, c, s2, codes);
            if (err < best_err) {
              best_err = err;
              best_c = c;
              std::copy(codes, codes + kSub, best_codes);
            }
          }
          tried_lo = std::min(tried_lo, std::max(c0 - 2, 1));
          tried_hi = std::max(tried_hi, std::min(c0 + 2, kMaxE4M3Code));
        }
      }
      b[k].d[s] = static_cast<uint8_t>(best_c);
      for (int j = 0; j < 8; ++j) b[k].qs[8 * s + j] = static_cast<uint8_t>(best_codes[j] | (best_codes[j + 8] << 4));
    }
  }
}

}  // namespace dg::quant

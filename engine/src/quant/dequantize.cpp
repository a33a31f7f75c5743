#include "quant/dequantize.h"

#include <cstring>

namespace dg {
namespace {

constexpr int64_t kQ8Block = 32;
struct BlockQ8_0 {  // ggml block_q8_0: 34 bytes
  uint16_t d;       // fp16 scale
  int8_t qs[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "block_q8_0 is 34 bytes");

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // 127 - 15 = 112
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // subnormal half: normalise into a normal float
    uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool row_dequant_supported(GGMLType t) {
  return t == GGMLType::F32 || t == GGMLType::F16 || t == GGMLType::BF16 || t == GGMLType::Q8_0;
}

int64_t dequant_block_size(GGMLType t) { return t == GGMLType::Q8_0 ? kQ8Block : 1; }

uint64_t dequant_row_bytes(GGMLType t, int64_t n) {
  switch (t) {
    case GGMLType::F32: return static_cast<uint64_t>(n) * 4;
    case GGMLType::F16:
    case GGMLType::BF16: return static_cast<uint64_t>(n) * 2;
    case GGMLType::Q8_0: return static_cast<uint64_t>((n + kQ8Block - 1) / kQ8Block) * sizeof(BlockQ8_0);
    default: return 0;
  }
}

void dequantize_row(GGMLType t, const uint8_t* row, int64_t first, int64_t n, float* dst) {
  switch (t) {
    case GGMLType::F32:
      std::memcpy(dst, row + first * 4, static_cast<size_t>(n) * 4);
      return;
    case GGMLType::F16: {
      const uint8_t* p = row + first * 2;
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(load_u16(p + 2 * i));
      return;
    }
    case GGMLType::BF16: {
      const uint8_t* p = row + first * 2;
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(load_u16(p + 2 * i));
      return;
    }
    case GGMLType::Q8_0: {
      const uint8_t* p = row + (first / kQ8Block) * sizeof(BlockQ8_0);
      for (int64_t i = 0; i < n; i += kQ8Block, p += sizeof(BlockQ8_0)) {
        const float d = fp16_to_fp32(load_u16(p));
        const int8_t* q = reinterpret_cast<const int8_t*>(p + 2);
        const int64_t m = n - i < kQ8Block ? n - i : kQ8Block;
        for (int64_t j = 0; j < m; ++j) dst[i + j] = d * static_cast<float>(q[j]);
      }
      return;
    }
    default:
      return;  // callers check row_dequant_supported at load time
  }
}

}  // namespace dg

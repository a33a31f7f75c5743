// The 12-byte packing of the eight 6-bit sub-block scales and mins of Q4_K / Q5_K (blocks.h),
// shared by the codecs and the int8 kernels' weight decoders.
#pragma once

#include <cstdint>

namespace dg::quant {

inline void pack_scales(const uint8_t* sc, const uint8_t* m, uint8_t* out) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
}

inline void unpack_scales(const uint8_t* in, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = in[j] & 63;
    m[j] = in[j + 4] & 63;
    sc[j + 4] = static_cast<uint8_t>((in[j + 8] & 15) | ((in[j] >> 2) & 0x30));
    m[j + 4] = static_cast<uint8_t>((in[j + 8] >> 4) | ((in[j + 4] >> 2) & 0x30));
  }
}

}  // namespace dg::quant

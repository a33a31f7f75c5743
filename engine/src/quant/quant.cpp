// dg::dequantize / dg::quantize: the type dispatch over the block codecs, plus the plain float
// types (F32 copy, F16 and BF16 with round-to-nearest-even).
#include "diffgemma/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "diffgemma/error.h"
#include "quant/formats.h"
#include "quant/scalars.h"

namespace dg {
namespace {

using namespace quant;

void dequantize_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }
void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = half_to_f32(h);
  }
}
void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    dst[i] = bf16_to_f32(h);
  }
}
void quantize_f32(const float* src, void* dst, int64_t n, const QuantizeOptions&) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}
void quantize_f16(const float* src, void* dst, int64_t n, const QuantizeOptions&) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_half(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}
void quantize_bf16(const float* src, void* dst, int64_t n, const QuantizeOptions&) {
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = f32_to_bf16(src[i]);
    std::memcpy(p + 2 * i, &h, 2);
  }
}

struct Codec {
  DequantizeFn dequantize;  // over n_blocks (for plain types: over n values)
  QuantizeFn quantize;
};

const Codec* codec(GGMLType t) {
  static const Codec f32{dequantize_f32, quantize_f32}, f16{dequantize_f16, quantize_f16},
      bf16{dequantize_bf16, quantize_bf16}, q4_0{dequantize_q4_0, quantize_q4_0},
      q4_1{dequantize_q4_1, quantize_q4_1}, q5_0{dequantize_q5_0, quantize_q5_0},
      q5_1{dequantize_q5_1, quantize_q5_1}, q8_0{dequantize_q8_0, quantize_q8_0},
      q8_1{dequantize_q8_1, quantize_q8_1}, q8_k{dequantize_q8_k, quantize_q8_k},
      q4_k{dequantize_q4_k, quantize_q4_k}, q5_k{dequantize_q5_k, quantize_q5_k},
      q6_k{dequantize_q6_k, quantize_q6_k}, nvfp4{dequantize_nvfp4, quantize_nvfp4};
  switch (t) {
    case GGMLType::F32: return &f32;
    case GGMLType::F16: return &f16;
    case GGMLType::BF16: return &bf16;
    case GGMLType::Q4_0: return &q4_0;
    case GGMLType::Q4_1: return &q4_1;
    case GGMLType::Q5_0: return &q5_0;
    case GGMLType::Q5_1: return &q5_1;
    case GGMLType::Q8_0: return &q8_0;
    case GGMLType::Q8_1: return &q8_1;
    case GGMLType::Q8_K: return &q8_k;
    case GGMLType::Q4_K: return &q4_k;
    case GGMLType::Q5_K: return &q5_k;
    case GGMLType::Q6_K: return &q6_k;
    case GGMLType::NVFP4: return &nvfp4;
    default: return nullptr;
  }
}

const Codec& checked_codec(GGMLType t, int64_t n) {
  const Codec* c = codec(t);
  if (!c) throw Error("quantization type " + std::string(ggml_type_name(t)) + " is not supported");
  const int64_t block = ggml_type_traits(t).block_size;
  if (n < 0 || n % block != 0) {
    throw Error(std::to_string(n) + " values cannot be stored as " + std::string(ggml_type_name(t)) +
                ": not a multiple of its block size " + std::to_string(block));
  }
  return *c;
}

}  // namespace

bool quant_supported(GGMLType t) { return codec(t) != nullptr; }

uint64_t quant_bytes(GGMLType t, int64_t n) {
  checked_codec(t, n);
  const GGMLTypeTraits tr = ggml_type_traits(t);
  return static_cast<uint64_t>(n / tr.block_size) * tr.type_size;
}

void dequantize(GGMLType t, const void* src, float* dst, int64_t n) {
  const Codec& c = checked_codec(t, n);
  c.dequantize(src, dst, n / ggml_type_traits(t).block_size);
}

void quantize(GGMLType t, const float* src, void* dst, int64_t n, const QuantizeOptions& opt) {
  const Codec& c = checked_codec(t, n);
  c.quantize(src, dst, n / ggml_type_traits(t).block_size, opt);
}

float nvfp4_tensor_scale(const float* x, int64_t n) {
  float amax = 0;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax > 0 ? amax / (6.0f * 448.0f) : 1.0f;
}

}  // namespace dg

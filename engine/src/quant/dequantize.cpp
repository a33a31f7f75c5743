#include "quant/dequantize.h"

#include "diffgemma/quant.h"

namespace dg {

bool row_dequant_supported(GGMLType t) {
  switch (t) {
    case GGMLType::F32: case GGMLType::F16: case GGMLType::BF16:
    case GGMLType::Q4_0: case GGMLType::Q4_1: case GGMLType::Q5_0: case GGMLType::Q5_1:
    case GGMLType::Q8_0: case GGMLType::Q4_K: case GGMLType::Q5_K: case GGMLType::Q6_K: case GGMLType::NVFP4:
      return true;
    default:
      return false;
  }
}

std::string row_dequant_supported_names() {
  std::string out;
  for (uint32_t id = 0; id < 64; ++id) {
    const auto tr = ggml_type_traits(id);
    if (!tr || !row_dequant_supported(static_cast<GGMLType>(id))) continue;
    if (!out.empty()) out += ", ";
    out += tr->name;
  }
  return out;
}

int64_t dequant_block_size(GGMLType t) { return ggml_type_traits(t).block_size; }

uint64_t dequant_row_bytes(GGMLType t, int64_t n) {
  const GGMLTypeTraits tr = ggml_type_traits(t);
  return static_cast<uint64_t>(n) / tr.block_size * tr.type_size;
}

void dequantize_row(GGMLType t, const uint8_t* row, int64_t first, int64_t n, float* dst) {
  dequantize(t, row + dequant_row_bytes(t, first), dst, n);
}

}  // namespace dg

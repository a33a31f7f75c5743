// ggml tensor types as stored in GGUF files: id, name, block size and bytes per block.
// The ids are part of the file format (ggml.h's enum ggml_type); removed ids stay unused.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace dg {

enum class GGMLType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41,
};

struct GGMLTypeTraits {
  std::string_view name;  // "Q8_0", as gguf-py and llama.cpp print it
  uint32_t block_size;    // elements per block (1 for plain types)
  uint32_t type_size;     // bytes per block
};

// Traits of a type id read from a file, or nullopt for an id no ggml version defines.
std::optional<GGMLTypeTraits> ggml_type_traits(uint32_t id);

// Traits of a known type (never fails for an enumerator).
GGMLTypeTraits ggml_type_traits(GGMLType t);

inline std::string_view ggml_type_name(GGMLType t) { return ggml_type_traits(t).name; }

}  // namespace dg

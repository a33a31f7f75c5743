// Quantizing a whole GGUF model file (diffgemma-quantize, diffgemma.quantize): which type each
// tensor gets (llama.cpp's llama-quantize rules for the mixes, reconstructed in
// ../shared/docs/gguf-layout.md §4.3) and the streaming rewrite of the file.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffgemma/ggml_type.h"
#include "diffgemma/gguf.h"

namespace dg {

// The file types diffgemma-quantize makes (names as llama-quantize spells them).
enum class QuantMix { Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q5_0, NVFP4 };

std::optional<QuantMix> parse_quant_mix(std::string_view name);  // case-insensitive; nullopt if unknown
const char* quant_mix_name(QuantMix mix);
const char* quant_mix_names();                // "Q8_0, Q6_K, ..." for messages
uint32_t quant_mix_file_type(QuantMix mix);   // general.file_type: llama.cpp's LlamaFileType id

// One tensor of the output file.
struct PlannedTensor {
  std::string name;
  GGMLType type = GGMLType::F32;
  uint32_t n_dims = 1;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order
  // Data: `source` (an input tensor) converted to `type`; for an NVFP4 second-level scale
  // (`scale_of` set) the per-group scales of that weight, times `source`'s values when the input
  // already has a tensor of this name (ffn_down_exps.scale: the router's per-expert scale is
  // folded in, as llama.cpp's converter does).
  std::string source;
  std::string scale_of;
};

// Every output tensor in output order (input order, each new NVFP4 `.scale` right after its
// weight). Throws dg::Error for an input tensor of a type that cannot be read.
std::vector<PlannedTensor> plan_quantization(const GGUFFile& in, QuantMix mix);

struct QuantizeFileOptions {
  int threads = 0;  // <= 0: all cores; the output is identical for any count
  // Called after each tensor with a one-line description (no newline); may be empty.
  std::function<void(size_t index, size_t count, const std::string& line)> progress;
};

// Reads `in_path`, writes `out_path` (via a temporary file renamed at the end). All metadata is
// copied; general.file_type is set and general.quantization_version added if missing.
void quantize_file(const std::string& in_path, const std::string& out_path, QuantMix mix,
                   const QuantizeFileOptions& opt = {});

}  // namespace dg

// Per-tensor output types of the quantization mixes: llama.cpp's llama-quantize rules
// (llama_tensor_get_type) as ../shared/docs/gguf-layout.md §4.3 reconstructs them. For the real
// DiffusionGemma shapes they give the unsloth Q4_K_M file's counts: 423 F32, 194 Q4_K, 14 Q6_K,
// 33 Q5_0, 28 Q8_0.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "diffgemma/error.h"
#include "diffgemma/quant.h"
#include "diffgemma/quantize_model.h"

namespace dg {
namespace {

struct MixInfo {
  QuantMix mix;
  const char* name;
  uint32_t file_type;  // gguf-py LlamaFileType
  GGMLType base;       // type of an ordinary weight matrix
};

constexpr MixInfo kMixes[] = {
    {QuantMix::Q8_0, "Q8_0", 7, GGMLType::Q8_0},       {QuantMix::Q6_K, "Q6_K", 18, GGMLType::Q6_K},
    {QuantMix::Q5_K_M, "Q5_K_M", 17, GGMLType::Q5_K},  {QuantMix::Q4_K_M, "Q4_K_M", 15, GGMLType::Q4_K},
    {QuantMix::Q5_0, "Q5_0", 8, GGMLType::Q5_0},       {QuantMix::NVFP4, "NVFP4", 39, GGMLType::NVFP4},
};

const MixInfo& info(QuantMix mix) {
  for (const MixInfo& m : kMixes) {
    if (m.mix == mix) return m;
  }
  return kMixes[0];
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// llama.cpp's use_more_bits: the first and last eighth of the layers and every third in between.
bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// blk.N. prefix -> N, or -1.
int layer_of(std::string_view name) {
  int layer = -1;
  if (name.substr(0, 4) == "blk." && std::sscanf(std::string(name).c_str(), "blk.%d.", &layer) == 1) return layer;
  return -1;
}

bool is_k_quant(GGMLType t) { return t == GGMLType::Q4_K || t == GGMLType::Q5_K || t == GGMLType::Q6_K; }

// Tensors that stay F32: 1-D tensors, norms, anything not a `.weight` (`.scale`, `.input_scale`),
// and the MoE router (llama-quantize never quantizes ffn_gate_inp).
bool keeps_f32(const GGUFTensor& t) {
  return t.n_dims < 2 || ends_with(t.name, "_norm.weight") || !ends_with(t.name, ".weight") ||
         contains(t.name, "ffn_gate_inp.weight");
}

struct Counters {
  int n_layer = 0, n_expert = 0, n_attn_v = 0;
  bool has_output = false;
  int i_attn_v = 0, i_ffn_down = 0;
};

GGMLType choose_type(const GGUFTensor& t, QuantMix mix, Counters& c) {
  const std::string_view name = t.name;
  const bool k_mix = mix == QuantMix::Q4_K_M || mix == QuantMix::Q5_K_M;
  GGMLType type = info(mix).base;
  if (name == "output.weight" || (name == "token_embd.weight" && !c.has_output)) {
    // The LM head (here tied to token_embd): Q6_K unless the whole file is Q8_0.
    if (type != GGMLType::Q8_0) type = GGMLType::Q6_K;
  } else if (contains(name, "attn_v.weight")) {
    if (k_mix && use_more_bits(c.i_attn_v, c.n_attn_v)) type = GGMLType::Q6_K;
    if (c.n_expert == 8) type = GGMLType::Q8_0;  // llama.cpp: cheap for 8-expert models
    ++c.i_attn_v;
  } else if (contains(name, "ffn_down")) {
    // MoE models take the layer from the name (expert tensors do not come in layer order).
    const int i_layer = c.n_expert > 1 ? layer_of(name) : c.i_ffn_down;
    if (k_mix && i_layer >= 0 && use_more_bits(i_layer, c.n_layer)) type = GGMLType::Q6_K;
    ++c.i_ffn_down;
  } else if (contains(name, "attn_output.weight")) {
    if (c.n_expert == 8 && mix == QuantMix::Q4_K_M) type = GGMLType::Q5_K;
  }
  // Rows that do not split into 256-value super-blocks fall back as llama.cpp does.
  if (is_k_quant(type) && t.ne[0] % 256 != 0) {
    type = type == GGMLType::Q4_K ? GGMLType::Q5_0 : type == GGMLType::Q5_K ? GGMLType::Q5_1 : GGMLType::Q8_0;
  }
  if (type == GGMLType::NVFP4 && t.ne[0] % 64 != 0) type = GGMLType::Q8_0;  // ours: NVFP4 needs 64
  if (t.ne[0] % ggml_type_traits(type).block_size != 0) type = GGMLType::F16;
  return type;
}

uint64_t meta_uint(const GGUFFile& f, const std::string& key) {
  const GGUFValue* v = f.find(key);
  return v && v->is_integer() && v->as_int() >= 0 ? v->as_uint() : 0;
}

}  // namespace

std::optional<QuantMix> parse_quant_mix(std::string_view name) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(), [](unsigned char ch) { return std::toupper(ch); });
  for (const MixInfo& m : kMixes) {
    if (upper == m.name) return m.mix;
  }
  return std::nullopt;
}

const char* quant_mix_name(QuantMix mix) { return info(mix).name; }
const char* quant_mix_names() { return "Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q5_0, NVFP4"; }
uint32_t quant_mix_file_type(QuantMix mix) { return info(mix).file_type; }

std::vector<PlannedTensor> plan_quantization(const GGUFFile& in, QuantMix mix) {
  Counters c;
  const std::string arch = in.get_string_or("general.architecture", "");
  c.n_expert = static_cast<int>(meta_uint(in, arch + ".expert_count"));
  c.n_layer = static_cast<int>(meta_uint(in, arch + ".block_count"));
  for (const GGUFTensor& t : in.tensors()) {
    if (contains(t.name, "attn_v.weight")) ++c.n_attn_v;
    if (t.name == "output.weight") c.has_output = true;
    if (arch.empty() || c.n_layer == 0) c.n_layer = std::max(c.n_layer, layer_of(t.name) + 1);
  }

  std::vector<PlannedTensor> plan;
  for (const GGUFTensor& t : in.tensors()) {
    if (!quant_supported(t.type)) {
      throw Error("tensor " + std::string(t.name) + " has type " + std::string(ggml_type_name(t.type)) +
                  ", which diffgemma-quantize cannot read");
    }
    PlannedTensor p;
    p.name = std::string(t.name);
    p.source = p.name;
    p.n_dims = t.n_dims;
    std::copy(t.ne, t.ne + 4, p.ne);
    p.type = keeps_f32(t) ? GGMLType::F32 : choose_type(t, mix, c);
    // NVFP4 input blocks (an imported ModelOpt checkpoint) mean nothing without their `.scale`:
    // they are kept as they are, and so is that scale.
    if (t.type == GGMLType::NVFP4) p.type = GGMLType::NVFP4;
    plan.push_back(p);
    if (p.type != GGMLType::NVFP4 || t.type == GGMLType::NVFP4) continue;
    // The second-level scale: one per expert (ne[2]) or one for a 2-D matrix.
    const std::string scale = p.name.substr(0, p.name.size() - 7) + ".scale";  // strip ".weight"
    if (in.find_tensor(scale)) continue;  // the input's own tensor gets it folded in
    PlannedTensor s;
    s.name = scale;
    s.type = GGMLType::F32;
    s.n_dims = 1;
    s.ne[0] = t.ne[2] * t.ne[3];
    s.scale_of = p.name;
    plan.push_back(s);
  }
  // Input `.scale` tensors of NVFP4 weights (ffn_down_exps.scale) carry the folded scales.
  for (PlannedTensor& p : plan) {
    if (!p.scale_of.empty() || !ends_with(p.name, ".scale")) continue;
    const std::string weight = p.name.substr(0, p.name.size() - 6) + ".weight";
    for (const PlannedTensor& w : plan) {
      const GGUFTensor* src = in.find_tensor(weight);
      if (w.name == weight && w.type == GGMLType::NVFP4 && src && src->type != GGMLType::NVFP4) {
        if (p.ne[0] * p.ne[1] * p.ne[2] * p.ne[3] != w.ne[2] * w.ne[3]) {
          throw Error("tensor " + p.name + " has " + std::to_string(p.ne[0]) + " values but " + weight + " has " +
                      std::to_string(w.ne[2]) + " experts");
        }
        p.scale_of = weight;
      }
    }
  }
  return plan;
}

}  // namespace dg

#include "inspect.h"

#include <cinttypes>
#include <map>
#include <string>

#include "json.h"

namespace dgcli {
namespace {

using dg::GGUFFile;
using dg::GGUFTensor;
using dg::GGUFValue;
using dg::GGUFValueType;

std::string human_bytes(uint64_t n) {
  char buf[32];
  if (n >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", n / double(1ull << 30));
  else if (n >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", n / double(1ull << 20));
  else if (n >= (1ull << 10)) std::snprintf(buf, sizeof buf, "%.2f KiB", n / double(1ull << 10));
  else std::snprintf(buf, sizeof buf, "%" PRIu64 " B", n);
  return buf;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000ull) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1000ull) std::snprintf(buf, sizeof buf, "%.2fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%" PRIu64, n);
  return buf;
}

// A number as JSON/text: floats with enough digits to round-trip a float32/float64.
std::string scalar_text(GGUFValueType t, uint64_t bits) {
  GGUFValue v;
  v.type = t;
  v.bits = bits;
  char buf[40];
  switch (t) {
    case GGUFValueType::BOOL: return v.as_bool() ? "true" : "false";
    case GGUFValueType::FLOAT32: std::snprintf(buf, sizeof buf, "%.9g", v.as_float()); return buf;
    case GGUFValueType::FLOAT64: std::snprintf(buf, sizeof buf, "%.17g", v.as_float()); return buf;
    case GGUFValueType::UINT64: std::snprintf(buf, sizeof buf, "%" PRIu64, v.bits); return buf;
    default: std::snprintf(buf, sizeof buf, "%" PRId64, v.as_int()); return buf;
  }
}

uint64_t elem_bits(const GGUFValue& v, uint64_t i) {
  const uint32_t n = dg::gguf_value_type_size(v.elem_type);
  uint64_t bits = 0;
  std::memcpy(&bits, v.elems + i * n, n);
  return bits;
}

// Text: strings shown quoted and cut to `max_chars`.
std::string short_string(std::string_view s, size_t max_chars) {
  if (s.size() <= max_chars) return json_string(s);
  // Cut on a UTF-8 boundary so the preview stays readable.
  size_t cut = max_chars;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return json_string(s.substr(0, cut)) + "... (" + std::to_string(s.size()) + " bytes)";
}

// Value rendered as JSON; arrays keep their first `max_array` elements (text mode adds a count).
std::string value_json(const GGUFValue& v, size_t max_array, size_t max_chars) {
  if (v.type == GGUFValueType::STRING) {
    return max_chars ? short_string(v.str, max_chars) : json_string(v.str);
  }
  if (v.type != GGUFValueType::ARRAY) return scalar_text(v.type, v.bits);
  std::string s = "[";
  uint64_t n = v.count < max_array ? v.count : max_array;
  for (uint64_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    if (v.elem_type == GGUFValueType::STRING) s += json_string(v.strings[i]);
    else if (v.elem_type == GGUFValueType::ARRAY) s += value_json(v.arrays[i], max_array, max_chars);
    else s += scalar_text(v.elem_type, elem_bits(v, i));
  }
  if (max_chars && v.count > n) s += ", ...";
  return s + "]";
}

std::string shape_text(const GGUFTensor& t) {
  std::string s;
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? " x " : "") + std::to_string(t.ne[d]);
  return s;
}

std::string shape_json(const GGUFTensor& t) {
  std::string s = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
  return s + "]";
}

struct TypeTotals {
  uint64_t count = 0, elements = 0, bytes = 0;
};

// A few lines a user reads first: what model this is, at which shapes.
void model_summary(const GGUFFile& f, std::FILE* out) {
  const std::string arch = f.get_string_or("general.architecture", "");
  if (arch.empty()) return;
  std::fprintf(out, "model:      %s", arch.c_str());
  const std::string name = f.get_string_or("general.name", "");
  if (!name.empty()) std::fprintf(out, " (%s)", name.c_str());
  std::fprintf(out, "\n");
  auto u = [&](const std::string& key) -> long long {
    const GGUFValue* v = f.find(key);
    return v && v->is_integer() ? static_cast<long long>(v->as_int()) : -1;
  };
  const std::string p = arch + ".";
  const long long layers = u(p + "block_count");
  if (layers >= 0) {
    std::fprintf(out, "  layers %lld, hidden %lld, heads %lld", layers, u(p + "embedding_length"),
                 u(p + "attention.head_count"));
    const GGUFValue* pat = f.find(p + "attention.sliding_window_pattern");
    if (pat && pat->is_array() && pat->elem_type == GGUFValueType::BOOL) {
      uint64_t sliding = 0;
      for (uint64_t i = 0; i < pat->count; ++i) sliding += pat->elem_bool(i);
      std::fprintf(out, " (%" PRIu64 " sliding, %" PRIu64 " full)", sliding, pat->count - sliding);
    }
    std::fprintf(out, "\n");
  }
  const long long experts = u(p + "expert_count");
  if (experts > 0) {
    std::fprintf(out, "  experts %lld, top-%lld, expert width %lld, dense MLP %lld\n", experts,
                 u(p + "expert_used_count"), u(p + "expert_feed_forward_length"),
                 u(p + "feed_forward_length"));
  }
  const GGUFValue* toks = f.find("tokenizer.ggml.tokens");
  if (toks && toks->is_array()) {
    std::fprintf(out, "  vocab %" PRIu64 " (%s)", toks->count,
                 f.get_string_or("tokenizer.ggml.model", "?").c_str());
    if (const GGUFValue* c = f.find("diffusion.canvas_length"); c && c->is_integer()) {
      std::fprintf(out, ", canvas %lld", static_cast<long long>(c->as_int()));
    }
    if (const GGUFValue* w = f.find(p + "attention.sliding_window"); w && w->is_integer()) {
      std::fprintf(out, ", sliding window %lld", static_cast<long long>(w->as_int()));
    }
    std::fprintf(out, "\n");
  }
}

void inspect_text(const GGUFFile& f, const InspectOptions& opt, std::FILE* out) {
  std::fprintf(out, "file:       %s (%s)\n", f.path().c_str(), human_bytes(f.file_size()).c_str());
  std::fprintf(out, "format:     GGUF v%u, alignment %" PRIu64 ", tensor data at offset %" PRIu64 "\n",
               f.version(), f.alignment(), f.data_offset());
  model_summary(f, out);

  std::fprintf(out, "\nmetadata:   %zu keys\n", f.metadata().size());
  size_t key_w = 0, type_w = 0;
  for (const auto& kv : f.metadata()) {
    key_w = std::max(key_w, kv.key.size());
    type_w = std::max(type_w, kv.value.type_string().size());
  }
  for (const auto& kv : f.metadata()) {
    std::string val = value_json(kv.value, opt.max_array, 60);
    if (kv.value.is_array()) val += "  (" + std::to_string(kv.value.count) + ")";
    std::fprintf(out, "  %-*.*s  %-*s  %s\n", static_cast<int>(key_w), static_cast<int>(kv.key.size()),
                 kv.key.data(), static_cast<int>(type_w), kv.value.type_string().c_str(), val.c_str());
  }

  std::map<std::string, TypeTotals> by_type;
  uint64_t total_bytes = 0, total_elems = 0;
  size_t name_w = 4;
  for (const GGUFTensor& t : f.tensors()) {
    TypeTotals& tt = by_type[std::string(dg::ggml_type_name(t.type))];
    tt.count++;
    tt.elements += t.n_elements;
    tt.bytes += t.nbytes;
    total_bytes += t.nbytes;
    total_elems += t.n_elements;
    name_w = std::max(name_w, t.name.size());
  }
  std::fprintf(out, "\ntensors:    %zu, %s parameters, %s\n", f.tensors().size(),
               human_count(total_elems).c_str(), human_bytes(total_bytes).c_str());
  for (const auto& [type, tt] : by_type) {
    std::fprintf(out, "  %-8s %5" PRIu64 " tensors  %10s params  %12s\n", type.c_str(), tt.count,
                 human_count(tt.elements).c_str(), human_bytes(tt.bytes).c_str());
  }
  if (opt.all_tensors && !f.tensors().empty()) {
    std::fprintf(out, "\n  %-*s  %-7s  %-22s  %12s  %s\n", static_cast<int>(name_w), "name", "type", "shape (ne)",
                 "size", "offset");
    for (const GGUFTensor& t : f.tensors()) {
      std::fprintf(out, "  %-*.*s  %-7s  %-22s  %12s  %" PRIu64 "\n", static_cast<int>(name_w),
                   static_cast<int>(t.name.size()), t.name.data(),
                   std::string(dg::ggml_type_name(t.type)).c_str(), shape_text(t).c_str(),
                   human_bytes(t.nbytes).c_str(), f.data_offset() + t.offset);
    }
  }
}

void inspect_json(const GGUFFile& f, const InspectOptions& opt, std::FILE* out) {
  std::fprintf(out, "{\"path\": %s, \"file_size\": %" PRIu64 ", \"version\": %u, \"alignment\": %" PRIu64
               ", \"data_offset\": %" PRIu64 ",\n \"metadata\": {",
               json_string(f.path()).c_str(), f.file_size(), f.version(), f.alignment(), f.data_offset());
  bool first = true;
  for (const auto& kv : f.metadata()) {
    std::fprintf(out, "%s\n  %s: {\"type\": %s", first ? "" : ",", json_string(kv.key).c_str(),
                 json_string(kv.value.type_string()).c_str());
    if (kv.value.is_array()) std::fprintf(out, ", \"count\": %" PRIu64, kv.value.count);
    std::fprintf(out, ", \"value\": %s}", value_json(kv.value, opt.max_array, 0).c_str());
    first = false;
  }
  std::fprintf(out, "},\n \"tensors\": [");
  first = true;
  for (const GGUFTensor& t : f.tensors()) {
    std::fprintf(out, "%s\n  {\"name\": %s, \"type\": %s, \"type_id\": %u, \"shape\": %s, \"offset\": %" PRIu64
                 ", \"nbytes\": %" PRIu64 "}",
                 first ? "" : ",", json_string(t.name).c_str(),
                 json_string(dg::ggml_type_name(t.type)).c_str(), static_cast<unsigned>(t.type),
                 shape_json(t).c_str(), t.offset, t.nbytes);
    first = false;
  }
  std::fprintf(out, "\n ]}\n");
}

}  // namespace

void inspect_gguf(const GGUFFile& f, const InspectOptions& opt, std::FILE* out) {
  if (opt.json) inspect_json(f, opt, out);
  else inspect_text(f, opt, out);
}

}  // namespace dgcli

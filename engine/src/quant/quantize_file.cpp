// quantize_file: rewrites a GGUF model tensor by tensor in the types plan_quantization chooses.
// Each tensor is converted in chunks of whole rows; within a chunk the rows are split into one
// contiguous range per thread. A row's bytes depend on that row alone (and on its group's NVFP4
// scale, computed before), so the file is identical for any thread count.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "diffgemma/error.h"
#include "diffgemma/quant.h"
#include "diffgemma/quantize_model.h"
#include "gguf/gguf_writer.h"

namespace dg {
namespace {

constexpr int64_t kChunkValues = int64_t{1} << 22;  // 16 MiB of float32 per chunk and thread group

struct RowView {
  const GGUFTensor* t;
  int64_t n_rows, row_values;
  uint64_t row_bytes;
};

RowView rows_of(const GGUFTensor& t) {
  const GGMLTypeTraits tr = ggml_type_traits(t.type);
  RowView v{&t, t.ne[1] * t.ne[2] * t.ne[3], t.ne[0], 0};
  v.row_bytes = static_cast<uint64_t>(t.ne[0] / tr.block_size) * tr.type_size;
  return v;
}

// Runs fn(first_row, end_row) over [0, n) split into `threads` contiguous ranges.
template <class Fn>
void parallel_rows(int64_t n, int threads, const Fn& fn) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (parts == 1) {
    fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(parts));
  for (int64_t p = 0; p < parts; ++p) {
    pool.emplace_back([&, p] {
      try {
        fn(n * p / parts, n * (p + 1) / parts);
      } catch (...) {
        errors[static_cast<size_t>(p)] = std::current_exception();
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

// NVFP4 second-level scale per group of rows (an expert: ne[1] rows; a 2-D matrix: all rows).
std::vector<float> nvfp4_group_scales(const GGUFTensor& t, int threads) {
  const RowView v = rows_of(t);
  const int64_t group_rows = t.ne[1];
  const int64_t n_groups = v.n_rows / group_rows;
  std::vector<float> amax(static_cast<size_t>(v.n_rows));
  parallel_rows(v.n_rows, threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(v.row_values));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize(t.type, t.data + r * v.row_bytes, row.data(), v.row_values);
      float m = 0;
      for (float x : row) m = std::max(m, std::fabs(x));
      amax[static_cast<size_t>(r)] = m;
    }
  });
  std::vector<float> scales(static_cast<size_t>(n_groups));
  for (int64_t g = 0; g < n_groups; ++g) {
    float m = 0;
    for (int64_t r = g * group_rows; r < (g + 1) * group_rows; ++r) m = std::max(m, amax[static_cast<size_t>(r)]);
    scales[static_cast<size_t>(g)] = nvfp4_tensor_scale(&m, 1);  // amax / (6 * 448)
  }
  return scales;
}

void write_converted(GGUFWriter& w, const GGUFTensor& t, GGMLType type, const std::vector<float>* group_scales,
                     int threads) {
  const RowView in = rows_of(t);
  if (t.type == type) {  // already in the target type: copy bit for bit
    w.write_data(t.data, t.nbytes);
    return;
  }
  const uint64_t out_row_bytes = quant_bytes(type, in.row_values);
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkValues / std::max<int64_t>(1, in.row_values));
  std::vector<uint8_t> out;
  for (int64_t r0 = 0; r0 < in.n_rows; r0 += chunk_rows) {
    const int64_t n = std::min(chunk_rows, in.n_rows - r0);
    out.resize(static_cast<size_t>(n * out_row_bytes));
    parallel_rows(n, threads, [&](int64_t a, int64_t b) {
      std::vector<float> row(static_cast<size_t>(in.row_values));
      for (int64_t i = a; i < b; ++i) {
        const int64_t r = r0 + i;
        dequantize(t.type, t.data + r * in.row_bytes, row.data(), in.row_values);
        for (float v : row) {
          if (!std::isfinite(v)) {
            throw Error("tensor " + std::string(t.name) + " holds a non-finite value in row " + std::to_string(r));
          }
        }
        QuantizeOptions opt;
        if (group_scales) opt.nvfp4_scale = (*group_scales)[static_cast<size_t>(r / t.ne[1])];
        quantize(type, row.data(), out.data() + i * out_row_bytes, in.row_values, opt);
      }
    });
    w.write_data(out.data(), out.size());
  }
}

std::string shape_text(const PlannedTensor& p) {
  std::string s;
  for (uint32_t d = 0; d < p.n_dims; ++d) s += (d ? " x " : "") + std::to_string(p.ne[d]);
  return s;
}

}  // namespace

void quantize_file(const std::string& in_path, const std::string& out_path, QuantMix mix,
                   const QuantizeFileOptions& opt) {
  const auto in = GGUFFile::open(in_path);
  const std::vector<PlannedTensor> plan = plan_quantization(*in, mix);
  const int threads = opt.threads > 0 ? opt.threads : std::max(1u, std::thread::hardware_concurrency());

  GGUFWriter w(out_path, in->alignment());
  bool has_qversion = false;
  for (const GGUFFile::KV& kv : in->metadata()) {
    if (kv.key == "general.file_type") continue;  // replaced below, in its place at the end
    has_qversion |= kv.key == "general.quantization_version";
    w.add_kv(kv.key, kv.value);
  }
  w.add_uint32("general.file_type", quant_mix_file_type(mix));
  if (!has_qversion) w.add_uint32("general.quantization_version", 2);
  for (const PlannedTensor& p : plan) w.add_tensor(p.name, p.type, p.n_dims, p.ne);
  w.write_header();

  std::map<std::string, std::vector<float>> scales;  // NVFP4 weight -> per-group second-level scales
  auto scales_of = [&](const std::string& weight) -> const std::vector<float>& {
    auto it = scales.find(weight);
    if (it == scales.end()) it = scales.emplace(weight, nvfp4_group_scales(*in->find_tensor(weight), threads)).first;
    return it->second;
  };

  for (size_t i = 0; i < plan.size(); ++i) {
    const PlannedTensor& p = plan[i];
    const GGUFTensor* src = p.source.empty() ? nullptr : in->find_tensor(p.source);
    std::string from;
    if (!p.scale_of.empty()) {
      std::vector<float> s = scales_of(p.scale_of);
      if (src) {  // fold the input's own per-group scale in (one fp32 rounding)
        std::vector<float> own(s.size());
        dequantize(src->type, src->data, own.data(), static_cast<int64_t>(own.size()));
        for (size_t g = 0; g < s.size(); ++g) s[g] = own[g] * s[g];
      }
      w.write_data(s.data(), s.size() * sizeof(float));
      from = src ? "F32 x NVFP4 scales" : "NVFP4 scales";
    } else {
      const std::vector<float>* group_scales = p.type == GGMLType::NVFP4 ? &scales_of(p.name) : nullptr;
      write_converted(w, *src, p.type, group_scales, threads);
      from = std::string(ggml_type_name(src->type));
    }
    w.end_tensor();
    if (opt.progress) {
      char line[512];
      std::snprintf(line, sizeof line, "[%4zu/%4zu] %-36s %-20s %6s -> %s", i + 1, plan.size(), p.name.c_str(),
                    shape_text(p).c_str(), from.c_str(), std::string(ggml_type_name(p.type)).c_str());
      opt.progress(i, plan.size(), line);
    }
  }
  w.finish();
}

}  // namespace dg

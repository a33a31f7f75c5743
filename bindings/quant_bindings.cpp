// Number formats and the model quantizer for Python: dequantize / quantize of raw blocks (the
// tests compare them with gguf-py), quantize_file (diffgemma.quantize) and its per-tensor plan.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "bindings.h"
#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "diffgemma/kernel_probe.h"
#include "diffgemma/quant.h"
#include "diffgemma/quantize_model.h"

namespace py = pybind11;

namespace dgpy {
namespace {

dg::GGMLType checked_type(uint32_t id) {
  if (!dg::ggml_type_traits(id)) throw dg::Error("unknown ggml type id " + std::to_string(id));
  return static_cast<dg::GGMLType>(id);
}

dg::QuantMix checked_mix(const std::string& name) {
  const auto mix = dg::parse_quant_mix(name);
  if (!mix) throw dg::Error("unknown type '" + name + "'; choose one of " + dg::quant_mix_names());
  return *mix;
}

}  // namespace

void register_quant(py::module_& m) {
  m.def(
      "dequantize",
      [](uint32_t type, py::buffer data, int64_t n) {
        const dg::GGMLType t = checked_type(type);
        const py::buffer_info info = data.request();
        const uint64_t need = dg::quant_bytes(t, n);
        const uint64_t have = static_cast<uint64_t>(info.size) * static_cast<uint64_t>(info.itemsize);
        if (have != need) {
          throw dg::Error(std::to_string(n) + " values of " + std::string(dg::ggml_type_name(t)) + " take " +
                          std::to_string(need) + " bytes, got " + std::to_string(have));
        }
        py::array_t<float> out(n);
        float* dst = out.mutable_data();
        const void* src = info.ptr;
        py::gil_scoped_release release;
        dg::dequantize(t, src, dst, n);
        return out;
      },
      py::arg("type"), py::arg("data"), py::arg("n"),
      "fp32 values of n values stored as ggml type id `type` (raw block bytes, C-contiguous)");

  m.def(
      "quantize",
      [](uint32_t type, py::array_t<float, py::array::c_style | py::array::forcecast> x, float nvfp4_scale) {
        const dg::GGMLType t = checked_type(type);
        const int64_t n = static_cast<int64_t>(x.size());
        py::array_t<uint8_t> out(static_cast<py::ssize_t>(dg::quant_bytes(t, n)));
        dg::QuantizeOptions opt;
        opt.nvfp4_scale = nvfp4_scale;
        const float* src = x.data();
        uint8_t* dst = out.mutable_data();
        py::gil_scoped_release release;
        dg::quantize(t, src, dst, n, opt);
        return out;
      },
      py::arg("type"), py::arg("x"), py::arg("nvfp4_scale") = 1.0f,
      "raw blocks (uint8 array) of the flattened float32 values x in ggml type id `type`; "
      "NVFP4 encodes x / nvfp4_scale");

  m.def(
      "nvfp4_tensor_scale",
      [](py::array_t<float, py::array::c_style | py::array::forcecast> x) {
        return dg::nvfp4_tensor_scale(x.data(), static_cast<int64_t>(x.size()));
      },
      py::arg("x"), "NVFP4 second-level scale of x: amax / (6 * 448), or 1 for all zeros");

  m.def(
      "quantization_plan",
      [](const std::string& path, const std::string& type) {
        const auto file = dg::GGUFFile::open(path);
        py::list out;
        for (const dg::PlannedTensor& p : dg::plan_quantization(*file, checked_mix(type))) {
          out.append(py::make_tuple(p.name, static_cast<uint32_t>(p.type)));
        }
        return out;
      },
      py::arg("path"), py::arg("type"), "[(tensor name, ggml type id)] that quantize_file would write");

  // Kernel probes (tests): one product through the engine's kernels with the process's path/ISA.
  auto probe = [](bool soft_embed) {
    return [soft_embed](uint32_t type, py::buffer w, int64_t n_out, int64_t n_in, float out_scale,
                        py::array_t<float, py::array::c_style | py::array::forcecast> x, int threads, bool packed) {
      const dg::GGMLType t = checked_type(type);
      const py::buffer_info info = w.request();
      const uint64_t need = static_cast<uint64_t>(n_out) * dg::quant_bytes(t, n_in);
      if (static_cast<uint64_t>(info.size) * static_cast<uint64_t>(info.itemsize) != need)
        throw dg::Error("probe: weight bytes do not match " + std::to_string(n_out) + " x " + std::to_string(n_in));
      const int64_t k_in = soft_embed ? n_out : n_in, k_out = soft_embed ? n_in : n_out;
      if (x.ndim() != 2 || x.shape(1) != k_in) throw dg::Error("probe: x must be [rows, " + std::to_string(k_in) + "]");
      const int64_t rows = x.shape(0);
      py::array_t<float> y({rows, k_out});
      const auto* wp = static_cast<const uint8_t*>(info.ptr);
      const float* xp = x.data();
      float* yp = y.mutable_data();
      if (soft_embed && packed) throw dg::Error("probe: the soft embedding never reads packed weights");
      py::gil_scoped_release release;
      if (soft_embed) dg::probe_soft_embed(t, wp, n_out, n_in, out_scale, xp, rows, yp, threads);
      else dg::probe_linear(t, wp, n_out, n_in, out_scale, xp, rows, yp, threads, packed);
      return y;
    };
  };
  m.def("probe_linear", probe(false), py::arg("type"), py::arg("w"), py::arg("n_out"), py::arg("n_in"),
        py::arg("out_scale"), py::arg("x"), py::arg("threads") = 1, py::arg("packed") = false,
        "y = out_scale * x @ W^T through the kernels (W: n_out rows of n_in values, raw blocks; packed: "
        "through the experts' packed-panel layout)");
  m.def("probe_soft_embed", probe(true), py::arg("type"), py::arg("w"), py::arg("n_out"), py::arg("n_in"),
        py::arg("out_scale"), py::arg("p"), py::arg("threads") = 1, py::arg("packed") = false,
        "y = out_scale * p @ W through the kernels (p: [rows, n_out]; packed: refused)");
  m.def(
      "probe_pack_applies",
      [](uint32_t type, int64_t n_out, int64_t n_in) { return dg::probe_pack_applies(checked_type(type), n_out, n_in); },
      py::arg("type"), py::arg("n_out"), py::arg("n_in"), "whether W has the experts' packed-panel layout");
  m.def(
      "probe_pack",
      [](uint32_t type, py::bytes w, int64_t n_out, int64_t n_in) {
        const dg::GGMLType t = checked_type(type);
        const std::string src = w;
        if (static_cast<uint64_t>(src.size()) != static_cast<uint64_t>(n_out) * dg::quant_bytes(t, n_in))
          throw dg::Error("probe: weight bytes do not match " + std::to_string(n_out) + " x " + std::to_string(n_in));
        std::string packed(src.size(), '\0'), restored(src.size(), '\0');
        dg::probe_pack(t, reinterpret_cast<const uint8_t*>(src.data()), n_out, n_in,
                       reinterpret_cast<uint8_t*>(packed.data()), reinterpret_cast<uint8_t*>(restored.data()));
        return py::make_tuple(py::bytes(packed), py::bytes(restored));
      },
      py::arg("type"), py::arg("w"), py::arg("n_out"), py::arg("n_in"),
      "(W packed, W restored from the packed bytes)");

  m.def(
      "quant_mix_file_type", [](const std::string& type) { return dg::quant_mix_file_type(checked_mix(type)); },
      py::arg("type"), "general.file_type (llama.cpp's LlamaFileType id) of a quantization mix");

  m.def(
      "quantize_file",
      [](const std::string& in, const std::string& out, const std::string& type, int threads,
         std::function<void(size_t, size_t, const std::string&)> progress) {
        dg::QuantizeFileOptions opt;
        opt.threads = threads;
        if (progress) {
          opt.progress = [&progress](size_t i, size_t n, const std::string& line) {
            py::gil_scoped_acquire acquire;
            progress(i, n, line);
          };
        }
        const dg::QuantMix mix = checked_mix(type);
        py::gil_scoped_release release;
        dg::quantize_file(in, out, mix, opt);
      },
      py::arg("in_path"), py::arg("out_path"), py::arg("type"), py::arg("threads") = 0,
      py::arg("progress") = nullptr, "quantize a GGUF model file (see diffgemma.quantize)");
}

}  // namespace dgpy

// Model and Context for Python. Inputs are converted and checked while holding the GIL; the
// passes run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bindings.h"
#include "diffgemma/context.h"
#include "diffgemma/error.h"
#include "diffgemma/model.h"
#include "diffgemma/profile.h"

namespace py = pybind11;

namespace dgpy {
namespace {

// Token ids from any integer sequence or array; range-checked before narrowing to int32.
std::vector<int32_t> to_ids(const py::object& obj, int64_t n_vocab) {
  auto arr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!arr) throw dg::Error("token ids must be a sequence of integers");
  if (arr.ndim() != 1) throw dg::Error("token ids must be one-dimensional, got " + std::to_string(arr.ndim()) + " dims");
  std::vector<int32_t> ids(static_cast<size_t>(arr.size()));
  const int64_t* p = arr.data();
  for (py::ssize_t i = 0; i < arr.size(); ++i) {
    if (p[i] < 0 || p[i] >= n_vocab)
      throw dg::Error("token id " + std::to_string(p[i]) + " at index " + std::to_string(i) +
                      " is out of range for a vocabulary of " + std::to_string(n_vocab));
    ids[static_cast<size_t>(i)] = static_cast<int32_t>(p[i]);
  }
  return ids;
}

py::dict hparams_dict(const dg::ModelHParams& hp) {
  py::dict d;
  d["n_vocab"] = hp.n_vocab;
  d["n_embd"] = hp.n_embd;
  d["n_layer"] = hp.n_layer;
  d["n_head"] = hp.n_head;
  d["n_ff"] = hp.n_ff;
  d["n_expert"] = hp.n_expert;
  d["n_expert_used"] = hp.n_expert_used;
  d["n_ff_exp"] = hp.n_ff_exp;
  d["head_dim_full"] = hp.head_dim_full;
  d["head_dim_swa"] = hp.head_dim_swa;
  d["n_rot_full"] = hp.n_rot_full;
  d["n_rot_swa"] = hp.n_rot_swa;
  d["rope_base_full"] = hp.rope_base_full;
  d["rope_base_swa"] = hp.rope_base_swa;
  d["norm_eps"] = hp.norm_eps;
  d["logit_softcap"] = hp.logit_softcap;
  d["sliding_window"] = hp.sliding_window;
  d["canvas_length"] = hp.canvas_length;
  d["n_ctx_train"] = hp.n_ctx_train;
  py::list kv, sl;
  for (auto x : hp.n_kv_head) kv.append(x);
  for (bool x : hp.is_sliding) sl.append(x);
  d["n_kv_head"] = kv;
  d["is_sliding"] = sl;
  return d;
}

}  // namespace

void register_model(py::module_& m) {
  using dg::Context;
  using dg::Model;

  m.def(
      "set_kernels", [](const std::string& mode) { dg::set_kernel_mode_string(mode.c_str()); }, py::arg("mode"),
      "Kernel path for every model of the process: 'fast' (default: 8-bit activations on quantized weights, "
      "fp32 accumulation), 'exact' (float activations, fp64 accumulation; what the parity tests use) or "
      "'reference' (the scalar kernels). Set before or between passes, not during one.");
  m.def("get_kernels", [] { return std::string(dg::kernel_mode_string()); });
  m.def(
      "set_isa", [](const std::string& isa) { dg::set_kernel_isa_string(isa.c_str()); }, py::arg("isa"),
      "Cap the instruction set of the kernels: 'scalar', 'avx2', 'avx2vnni', 'avx512' or 'native' "
      "(never above what the CPU has).");
  m.def("get_isa", [] { return std::string(dg::kernel_isa_string()); });
  m.def(
      "set_q5_0_direct", [](int v) { dg::set_q5_0_direct_mode(v); }, py::arg("mode"),
      "Packed Q5_0 weights read in place by the AVX-512 kernels (1) or widened per panel for the "
      "staged kernels (0); -1: this CPU's default. Results are identical either way.");
  m.def("get_q5_0_direct", [] { return dg::q5_0_direct_mode(); });

  py::class_<Model, std::shared_ptr<Model>>(m, "Model", "A DiffusionGemma GGUF, mapped; weights are not copied.")
      .def_static(
          "load",
          [](const std::string& path, int n_threads) {
            py::gil_scoped_release nogil;
            return Model::load(path, n_threads);
          },
          py::arg("path"), py::arg("n_threads") = 0,
          "Load a diffusion-gemma GGUF. n_threads <= 0: one per physical core.")
      .def_property_readonly("hparams", [](const Model& self) { return hparams_dict(self.hparams()); })
      .def_property_readonly("n_vocab", [](const Model& self) { return self.hparams().n_vocab; })
      .def_property_readonly("n_embd", [](const Model& self) { return self.hparams().n_embd; })
      .def_property_readonly("n_layer", [](const Model& self) { return self.hparams().n_layer; })
      .def_property_readonly("canvas_length", [](const Model& self) { return self.hparams().canvas_length; })
      .def_property_readonly("n_threads", &Model::n_threads)
      .def_property_readonly("path", &Model::path)
      .def_property_readonly("has_output_weight", &Model::has_output_weight)
      .def_property_readonly("experts_fused", &Model::experts_fused)
      .def_property_readonly("packed_bytes", &Model::packed_bytes,
                             "bytes of expert weights packed for the int8 kernels at load (DIFFGEMMA_REPACK=0: none)")
      .def_property_readonly("weight_type", &Model::weight_type_name);

  py::class_<Context>(m, "Context", "KV cache and buffers of one generation over a Model.")
      .def(py::init([](std::shared_ptr<Model> model, int64_t n_ctx, int64_t n_batch, bool record_hidden,
                       int64_t sc_top_k) {
             if (sc_top_k < 0) throw dg::Error("sc_top_k must be >= 0 (0: the exact soft embedding)");
             dg::ContextParams p;
             p.n_ctx = n_ctx;
             p.n_batch = n_batch;
             p.record_hidden = record_hidden;
             p.sc_top_k = sc_top_k;
             return std::make_unique<Context>(std::move(model), p);
           }),
           py::arg("model"), py::arg("n_ctx") = 4096, py::arg("n_batch") = 0, py::arg("record_hidden") = false,
           py::arg("sc_top_k") = 0)
      .def(
          "encode",
          [](Context& self, const py::object& ids) {
            const std::vector<int32_t> v = to_ids(ids, self.model().hparams().n_vocab);
            py::gil_scoped_release nogil;
            self.encode(v.data(), static_cast<int64_t>(v.size()));
          },
          py::arg("ids"), "Causal encoder pass: append the K/V of ids at positions [n_past, n_past + len).")
      .def(
          "denoise",
          [](Context& self, const py::object& canvas, const py::object& sc_logits) {
            const int64_t V = self.model().hparams().n_vocab;
            const std::vector<int32_t> v = to_ids(canvas, V);
            const int64_t C = static_cast<int64_t>(v.size());
            py::array_t<float, py::array::c_style | py::array::forcecast> sc;
            if (!sc_logits.is_none()) {
              sc = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(sc_logits);
              if (!sc || sc.ndim() != 2 || sc.shape(0) != C || sc.shape(1) != V)
                throw dg::Error("sc_logits must be a float array of shape [" + std::to_string(C) + ", " +
                                std::to_string(V) + "]");
            }
            py::array_t<float> logits({C, V});
            float* out = logits.mutable_data();
            const float* scp = sc_logits.is_none() ? nullptr : sc.data();
            {
              py::gil_scoped_release nogil;
              self.denoise(v.data(), C, scp, out);
            }
            return logits;
          },
          py::arg("canvas_ids"), py::arg("sc_logits") = py::none(),
          "Decoder pass over the canvas at positions [n_past, n_past + C): softcapped logits [C, V] float32.")
      .def(
          "commit",
          [](Context& self, const py::object& ids) {
            const std::vector<int32_t> v = to_ids(ids, self.model().hparams().n_vocab);
            py::gil_scoped_release nogil;
            self.commit(v.data(), static_cast<int64_t>(v.size()));
          },
          py::arg("canvas_ids"), "Encode the committed canvas at the positions it was denoised at.")
      .def("clear", &Context::clear)
      .def_property_readonly("n_past", &Context::n_past)
      .def_property_readonly("n_batch", &Context::n_batch)
      .def(
          "kv",
          [](const Context& self, int64_t il) {
            const int64_t len = self.kv_len(il);
            const auto& hp = self.model().hparams();
            const int64_t nkv = hp.n_kv_head.at(static_cast<size_t>(il)), hd = hp.head_dim(il);
            py::array_t<float> k({nkv, len, hd}), v({nkv, len, hd});
            self.read_kv(il, k.mutable_data(), v.mutable_data());
            return py::make_tuple(k, v);
          },
          py::arg("layer"), "Cached (K, V) of a layer, each [n_kv_head, len, head_dim] (tests).")
      .def("kv_pos0", &Context::kv_pos0, py::arg("layer"), "Position of the first cached entry of a layer.")
      .def(
          "hidden",
          [](const Context& self, int64_t il) {
            const int64_t rows = self.hidden_rows();
            py::array_t<float> out({rows, self.model().hparams().n_embd});
            self.read_hidden(il, out.mutable_data());
            return out;
          },
          py::arg("layer"), "Output of a layer for the last pass's rows (needs record_hidden=True).");
}

}  // namespace dgpy

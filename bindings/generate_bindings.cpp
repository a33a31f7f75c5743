// The diffusion loop for Python: dg::generate with the GIL released. Events reach a Python
// callback with the GIL re-acquired; Ctrl-C (or an exception from the callback) sets the cancel
// flag, the engine stops after the current pass, and the exception is raised once it has.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "bindings.h"
#include "diffgemma/context.h"
#include "diffgemma/error.h"
#include "diffgemma/generate.h"
#include "diffgemma/model.h"
#include "../engine/src/diffusion/entropy_bound.h"
#include "../engine/src/diffusion/random_stream.h"
#include "../engine/src/diffusion/token_sampler.h"

namespace py = pybind11;

namespace dgpy {
namespace {

std::vector<int32_t> ids_from(const py::object& obj, int64_t n_vocab, const char* what) {
  auto arr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!arr || arr.ndim() != 1) throw dg::Error(std::string(what) + " must be a one-dimensional sequence of integers");
  std::vector<int32_t> ids(static_cast<size_t>(arr.size()));
  for (py::ssize_t i = 0; i < arr.size(); ++i) {
    const int64_t v = arr.data()[i];
    if (v < 0 || v >= n_vocab)
      throw dg::Error(std::string(what) + ": token id " + std::to_string(v) + " at index " + std::to_string(i) +
                      " is out of range for a vocabulary of " + std::to_string(n_vocab));
    ids[static_cast<size_t>(i)] = static_cast<int32_t>(v);
  }
  return ids;
}

py::array_t<int32_t> ids_array(const int32_t* p, int64_t n) {
  py::array_t<int32_t> a(n);
  std::copy(p, p + n, a.mutable_data());
  return a;
}

py::dict stats_dict(const dg::GenerateStats& s) {
  py::dict d;
  d["prompt_tokens"] = s.prompt_tokens;
  d["generated_tokens"] = s.generated_tokens;
  d["canvases"] = s.canvases;
  d["denoising_steps"] = s.denoising_steps;
  d["converged_canvases"] = s.converged_canvases;
  d["converged"] = s.converged();
  d["tokens_per_forward"] = s.tokens_per_forward;
  d["prefill_ms"] = s.prefill_ms;
  d["denoise_ms"] = s.denoise_ms;
  d["commit_ms"] = s.commit_ms;
  d["total_ms"] = s.total_ms;
  d["ttfc_ms"] = s.ttfc_ms;
  d["ms_per_step"] = s.ms_per_step();
  d["tokens_per_second"] = s.tokens_per_second();
  return d;
}

py::dict event_dict(const dg::GenerateEvent& ev, int64_t n_vocab, bool draft_logits) {
  py::dict d;
  const int64_t C = ev.canvas_length;
  d["canvas"] = ev.canvas;
  switch (ev.type) {
    case dg::GenerateEvent::Type::DRAFT: {
      d["type"] = "draft";
      d["step"] = ev.step;
      d["argmax"] = ids_array(ev.argmax, C);
      d["next"] = ids_array(ev.next, C);
      py::array_t<bool> acc(C);
      for (int64_t i = 0; i < C; ++i) acc.mutable_data()[i] = ev.accepted[i] != 0;
      d["accepted"] = acc;
      d["n_accepted"] = ev.n_accepted;
      d["temperature"] = ev.temperature;
      d["mean_entropy"] = ev.mean_entropy;
      d["stopped"] = ev.stopped;
      if (draft_logits) {  // a [C, V] copy per step: only on request
        py::array_t<float> l({C, n_vocab});
        std::copy(ev.sc_logits, ev.sc_logits + C * n_vocab, l.mutable_data());
        d["logits"] = l;
      }
      break;
    }
    case dg::GenerateEvent::Type::COMMIT:
      d["type"] = "commit";
      d["tokens"] = ids_array(ev.argmax, C);
      d["n_valid"] = ev.n_valid;
      d["stats"] = stats_dict(*ev.stats);
      break;
    case dg::GenerateEvent::Type::DONE:
      d["type"] = "done";
      d["stats"] = stats_dict(*ev.stats);
      break;
  }
  return d;
}

py::dict run_generate(dg::Context& ctx, const py::object& prompt, int64_t max_new_tokens, uint64_t seed,
                      std::optional<int32_t> max_denoising_steps, std::optional<double> t_min,
                      std::optional<double> t_max, std::optional<double> entropy_bound,
                      std::optional<int32_t> stability_threshold, std::optional<double> confidence_threshold,
                      const py::object& eos_token_id, const py::object& pad_token_id,
                      const py::object& initial_canvas, const py::object& callback, bool draft_events,
                      bool draft_logits) {
  const dg::Model& model = ctx.model();
  const int64_t V = model.hparams().n_vocab;
  dg::GenerateParams p;
  p.diffusion = dg::DiffusionParams::from_model(model);
  if (max_denoising_steps) p.diffusion.max_denoising_steps = *max_denoising_steps;
  if (t_min) p.diffusion.t_min = static_cast<float>(*t_min);
  if (t_max) p.diffusion.t_max = static_cast<float>(*t_max);
  if (entropy_bound) p.diffusion.entropy_bound = static_cast<float>(*entropy_bound);
  if (stability_threshold) p.diffusion.stability_threshold = *stability_threshold;
  if (confidence_threshold) p.diffusion.confidence_threshold = static_cast<float>(*confidence_threshold);
  p.max_new_tokens = max_new_tokens;
  p.seed = seed;
  if (!eos_token_id.is_none()) {
    if (py::isinstance<py::int_>(eos_token_id)) {
      p.eos_ids = ids_from(py::make_tuple(eos_token_id), V, "eos_token_id");
    } else {
      p.eos_ids = ids_from(eos_token_id, V, "eos_token_id");
      p.no_eos = p.eos_ids.empty();
    }
  }
  if (!pad_token_id.is_none()) {
    const int64_t pad = pad_token_id.cast<int64_t>();
    if (pad < -1 || pad >= V) throw dg::Error("pad_token_id " + std::to_string(pad) + " is out of range");
    p.pad_id = static_cast<int32_t>(pad);
  }
  if (!initial_canvas.is_none()) p.initial_canvas = ids_from(initial_canvas, V, "decoder_input_ids");
  const std::vector<int32_t> ids = ids_from(prompt, V, "prompt");

  std::atomic<bool> cancel{false};
  std::optional<py::error_already_set> pending_error;
  p.cancel = &cancel;
  // Every step reaches this lambda (so Ctrl-C is seen within one decoder pass); only the events
  // asked for reach the Python callback.
  p.draft_events = true;
  p.on_event = [&](const dg::GenerateEvent& ev) {
    if (cancel.load()) return;
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {  // Ctrl-C: KeyboardInterrupt is now set
      pending_error.emplace();
      cancel.store(true);
      return;
    }
    if (callback.is_none() || (ev.type == dg::GenerateEvent::Type::DRAFT && !draft_events)) return;
    try {
      callback(event_dict(ev, V, draft_logits));
    } catch (py::error_already_set& e) {
      pending_error.emplace(std::move(e));
      cancel.store(true);
    }
  };

  dg::GenerateResult r;
  {
    py::gil_scoped_release nogil;
    r = dg::generate(ctx, ids, p);
  }
  p.on_event = nullptr;  // the lambda's captures die with this frame
  if (pending_error) throw std::move(*pending_error);

  py::dict d;
  d["tokens"] = ids_array(r.tokens.data(), static_cast<int64_t>(r.tokens.size()));
  d["canvases"] = ids_array(r.canvases.data(), static_cast<int64_t>(r.canvases.size()));
  d["pending_tokens"] = ids_array(r.pending_tokens.data(), static_cast<int64_t>(r.pending_tokens.size()));
  d["eos_token"] = r.eos_token;
  d["stop_reason"] = dg::stop_reason_name(r.stop);
  d["stats"] = stats_dict(r.stats);
  return d;
}

}  // namespace

void register_generate(py::module_& m) {
  m.def("generate", &run_generate, py::arg("context"), py::arg("prompt"), py::kw_only(),
        py::arg("max_new_tokens") = 256, py::arg("seed") = 0, py::arg("max_denoising_steps") = py::none(),
        py::arg("t_min") = py::none(), py::arg("t_max") = py::none(), py::arg("entropy_bound") = py::none(),
        py::arg("stability_threshold") = py::none(), py::arg("confidence_threshold") = py::none(),
        py::arg("eos_token_id") = py::none(), py::arg("pad_token_id") = py::none(),
        py::arg("decoder_input_ids") = py::none(), py::arg("callback") = py::none(),
        py::arg("draft_events") = true, py::arg("draft_logits") = false,
        "Run the diffusion loop on a Context: encode prompt at n_past, then denoise canvases.\n"
        "Knobs default to the GGUF's diffusion.eb_* keys (else transformers' defaults). eos_token_id:\n"
        "int or list ([] disables EOS); pad_token_id: -1 disables padding. callback(event dict) is\n"
        "called per draft/commit/done; draft_logits adds each draft's scaled logits [C, V] (the next\n"
        "step's self-conditioning input). Returns a dict: tokens, canvases, pending_tokens, eos_token,\n"
        "stop_reason, stats.");

  m.def(
      "diffusion_defaults",
      [](const dg::Model& model) {
        const dg::DiffusionParams d = dg::DiffusionParams::from_model(model);
        py::dict out;
        out["max_denoising_steps"] = d.max_denoising_steps;
        out["t_min"] = d.t_min;
        out["t_max"] = d.t_max;
        out["entropy_bound"] = d.entropy_bound;
        out["stability_threshold"] = d.stability_threshold;
        out["confidence_threshold"] = d.confidence_threshold;
        out["eos_token_id"] = dg::default_eos_ids(model);
        out["pad_token_id"] = dg::default_pad_id(model);
        return out;
      },
      py::arg("model"), "The model's generation defaults (GGUF diffusion.eb_* keys, EOS and pad ids).");

  // Pieces of the loop, for tests against their torch counterparts.
  m.def("random_draw", &dg::rng::draw, py::arg("seed"), py::arg("stream"), py::arg("canvas"), py::arg("step"),
        py::arg("pos"), "model-spec §10.2 draw(seed, stream, canvas, step, pos) as an unsigned 64-bit int.");
  m.def(
      "entropy_order",
      [](const py::array_t<float, py::array::c_style | py::array::forcecast>& e) {
        std::vector<dg::diffusion::EntropyOrderItem> order;
        dg::diffusion::sort_by_entropy(e.data(), static_cast<int32_t>(e.size()), order);
        std::vector<int32_t> idx;
        for (const auto& it : order) idx.push_back(it.pos);
        return idx;
      },
      py::arg("entropy"), "The order the acceptance sorts entropies in (torch.sort's, ties included).");
  m.def(
      "sample_categorical",
      [](const py::array_t<float, py::array::c_style | py::array::forcecast>& p, double u) {
        return dg::diffusion::sample_categorical(p.data(), static_cast<int64_t>(p.size()), u);
      },
      py::arg("probs"), py::arg("u"), "The stream-1 categorical sample rule on given probabilities.");
}

}  // namespace dgpy

// Tokenizer, StreamingDetokenizer and the native chat template for Python.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.h"
#include "diffgemma/chat_template.h"
#include "diffgemma/error.h"
#include "diffgemma/gguf.h"
#include "diffgemma/tokenizer.h"

namespace py = pybind11;
using dg::StreamingDetokenizer;
using dg::TokenId;
using dg::Tokenizer;

namespace dgpy {
namespace {

py::str utf8_to_py(const std::string& s) {
  // Engine output is valid UTF-8 except where a malformed vocabulary stores invalid text.
  PyObject* u = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
  if (!u) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(u);
}

std::string py_text(const py::handle& h) {
  if (py::isinstance<py::bytes>(h)) return h.cast<std::string>();
  if (!py::isinstance<py::str>(h)) throw py::type_error("text must be str or bytes");
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(h.ptr(), &n);
  if (!p) throw py::error_already_set();
  return std::string(p, static_cast<size_t>(n));
}

// Python value (dict/list/tuple/str/int/float/bool/None) -> ChatValue.
dg::ChatValue to_chat_value(const py::handle& h, int depth = 0) {
  if (depth > 64) throw py::value_error("chat value is nested too deeply");
  if (h.is_none()) return dg::ChatValue();
  if (py::isinstance<py::bool_>(h)) return dg::ChatValue(h.cast<bool>());
  if (py::isinstance<py::int_>(h)) return dg::ChatValue(h.cast<int64_t>());
  if (py::isinstance<py::float_>(h)) return dg::ChatValue(h.cast<double>());
  if (py::isinstance<py::str>(h)) return dg::ChatValue(py_text(h));
  if (py::isinstance<py::dict>(h)) {
    dg::ChatValue v = dg::ChatValue::object();
    for (auto item : py::reinterpret_borrow<py::dict>(h)) {
      if (!py::isinstance<py::str>(item.first)) throw py::type_error("chat message keys must be strings");
      v.set(py_text(item.first), to_chat_value(item.second, depth + 1));
    }
    return v;
  }
  if (py::isinstance<py::list>(h) || py::isinstance<py::tuple>(h)) {
    dg::ChatValue v = dg::ChatValue::array();
    for (auto item : h) v.push(to_chat_value(item, depth + 1));
    return v;
  }
  throw py::type_error("chat values must be dict, list, str, int, float, bool or None, not " +
                       std::string(py::str(py::type::handle_of(h).attr("__name__"))));
}

std::shared_ptr<Tokenizer> make_tokenizer(const py::object& source) {
  if (py::isinstance<dg::GGUFFile>(source)) {
    auto f = source.cast<std::shared_ptr<dg::GGUFFile>>();
    py::gil_scoped_release nogil;
    return Tokenizer::from_gguf(*f);
  }
  std::string path = py::str(source);  // str or os.PathLike
  if (py::hasattr(source, "__fspath__")) path = py::str(source.attr("__fspath__")());
  py::gil_scoped_release nogil;
  auto f = dg::GGUFFile::open(path);
  return Tokenizer::from_gguf(*f);
}

}  // namespace

void register_tokenizer(py::module_& m) {
  py::enum_<dg::TokenType>(m, "TokenType", "llama.cpp token types (tokenizer.ggml.token_type)")
      .value("UNDEFINED", dg::TokenType::UNDEFINED)
      .value("NORMAL", dg::TokenType::NORMAL)
      .value("UNKNOWN", dg::TokenType::UNKNOWN)
      .value("CONTROL", dg::TokenType::CONTROL)
      .value("USER_DEFINED", dg::TokenType::USER_DEFINED)
      .value("UNUSED", dg::TokenType::UNUSED)
      .value("BYTE", dg::TokenType::BYTE);

  py::class_<StreamingDetokenizer>(
      m, "StreamingDetokenizer",
      "Detokenizes ids as they arrive; push() returns only complete UTF-8 text. The pushes and the final "
      "flush() together equal Tokenizer.detokenize of all ids.")
      .def(py::init([](std::shared_ptr<Tokenizer> t, bool render_special) {
             return std::make_unique<StreamingDetokenizer>(std::move(t), render_special);
           }),
           py::arg("tokenizer"), py::arg("render_special") = false)
      .def(
          "push", [](StreamingDetokenizer& d, TokenId id) { return utf8_to_py(d.push(id)); }, py::arg("id"))
      .def(
          "push", [](StreamingDetokenizer& d, const std::vector<TokenId>& ids) { return utf8_to_py(d.push(ids)); },
          py::arg("ids"))
      .def("flush", [](StreamingDetokenizer& d) { return utf8_to_py(d.flush()); })
      .def_property_readonly("pending", &StreamingDetokenizer::pending, "bytes are held for an unfinished character");

  py::class_<Tokenizer, std::shared_ptr<Tokenizer>>(
      m, "Tokenizer",
      "The model's tokenizer, built from GGUF metadata (a GGUFFile or a path). 'gemma4' BPE vocabularies "
      "match HF tokenizers on the model's tokenizer.json; 'llama' (SentencePiece) vocabularies are also read.")
      .def(py::init(&make_tokenizer), py::arg("source"))
      .def(
          "tokenize",
          [](const Tokenizer& t, const py::object& text, bool add_bos, bool special) {
            const std::string s = py_text(text);
            py::gil_scoped_release nogil;
            return t.tokenize(s, add_bos, special);
          },
          py::arg("text"), py::arg("add_bos") = true, py::arg("special") = true,
          "text -> ids. special=True cuts special/user-defined tokens such as '<|turn>' out of the text; "
          "special=False treats the text as plain text.")
      .def(
          "detokenize",
          [](const Tokenizer& t, const std::vector<TokenId>& ids, bool render_special) {
            std::string s;
            {
              py::gil_scoped_release nogil;
              s = t.detokenize(ids, render_special);
            }
            return utf8_to_py(s);
          },
          py::arg("ids"), py::arg("render_special") = false,
          "ids -> text; control tokens such as '<bos>' are rendered only with render_special=True")
      .def(
          "token_to_piece",
          [](const Tokenizer& t, TokenId id, bool render_special) {
            const std::string s = t.token_to_piece(id, render_special);
            return py::bytes(s.data(), s.size());
          },
          py::arg("id"), py::arg("render_special") = false, "the bytes one token stands for")
      .def(
          "streaming_detokenizer",
          [](std::shared_ptr<Tokenizer> t, bool render_special) {
            return std::make_unique<StreamingDetokenizer>(std::move(t), render_special);
          },
          py::arg("render_special") = false)
      .def(
          "token_text", [](const Tokenizer& t, TokenId id) { return utf8_to_py(t.token_text(id)); }, py::arg("id"),
          "the token as stored in the vocabulary ('▁' for spaces)")
      .def("token_type", &Tokenizer::token_type, py::arg("id"))
      .def(
          "find_token", [](const Tokenizer& t, const std::string& s) { return t.find_token(s); }, py::arg("text"),
          "id of the token with exactly this stored text, or -1")
      .def("is_eog", &Tokenizer::is_eog, py::arg("id"), "whether the id ends generation")
      .def_property_readonly("eog_ids", &Tokenizer::eog_ids)
      .def_property_readonly("n_vocab", &Tokenizer::n_vocab)
      .def("__len__", &Tokenizer::n_vocab)
      .def_property_readonly("n_merges", &Tokenizer::n_merges)
      .def_property_readonly("model", &Tokenizer::model_name, "tokenizer.ggml.model: 'gemma4' or 'llama'")
      .def_property_readonly("bos_id", &Tokenizer::bos_id)
      .def_property_readonly("eos_id", &Tokenizer::eos_id)
      .def_property_readonly("unk_id", &Tokenizer::unk_id)
      .def_property_readonly("pad_id", &Tokenizer::pad_id)
      .def_property_readonly("mask_id", &Tokenizer::mask_id)
      .def_property_readonly("add_bos", &Tokenizer::add_bos_default, "tokenizer.ggml.add_bos_token")
      .def_property_readonly("chat_template", [](const Tokenizer& t) { return utf8_to_py(t.chat_template()); })
      .def(
          "apply_chat_template",
          [](const Tokenizer& t, const py::object& messages, const py::object& tools, bool add_generation_prompt,
             bool enable_thinking, bool preserve_thinking, const py::object& chat_template) {
            dg::ChatOptions opt;
            opt.add_generation_prompt = add_generation_prompt;
            opt.enable_thinking = enable_thinking;
            opt.preserve_thinking = preserve_thinking;
            opt.bos_token = t.bos_id() >= 0 ? t.token_text(t.bos_id()) : "";
            const dg::ChatValue msgs = to_chat_value(messages);
            const dg::ChatValue tls = tools.is_none() ? dg::ChatValue() : to_chat_value(tools);
            const dg::ChatTemplate ct = chat_template.is_none() ? dg::ChatTemplate::for_model(t)
                                                                : dg::ChatTemplate::detect(py_text(chat_template));
            return utf8_to_py(ct.render(msgs, tls, opt));
          },
          py::arg("messages"), py::arg("tools") = py::none(), py::arg("add_generation_prompt") = true,
          py::arg("enable_thinking") = false, py::arg("preserve_thinking") = false,
          py::arg("chat_template") = py::none(),
          "Render a conversation with the native renderer of the file's chat template (or the given one). "
          "Raises diffgemma.Error for a template the native renderer does not know.")
      .def("__repr__", [](const Tokenizer& t) {
        return "Tokenizer(" + t.model_name() + ", " + std::to_string(t.n_vocab()) + " tokens, " +
               std::to_string(t.n_merges()) + " merges)";
      });

  m.def(
      "render_chat",
      [](const std::string& chat_template, const py::object& messages, const py::object& tools,
         bool add_generation_prompt, bool enable_thinking, bool preserve_thinking, const std::string& bos_token,
         const std::string& format) {
        dg::ChatOptions opt;
        opt.add_generation_prompt = add_generation_prompt;
        opt.enable_thinking = enable_thinking;
        opt.preserve_thinking = preserve_thinking;
        opt.bos_token = bos_token;
        const dg::ChatValue msgs = to_chat_value(messages);
        const dg::ChatValue tls = tools.is_none() ? dg::ChatValue() : to_chat_value(tools);
        const dg::ChatTemplate ct =
            format == "auto" ? dg::ChatTemplate::detect(chat_template) : dg::ChatTemplate::from_name(format);
        return utf8_to_py(ct.render(msgs, tls, opt));
      },
      py::arg("chat_template"), py::arg("messages"), py::arg("tools") = py::none(),
      py::arg("add_generation_prompt") = true, py::arg("enable_thinking") = false,
      py::arg("preserve_thinking") = false, py::arg("bos_token") = "<bos>", py::arg("format") = "auto",
      "Native rendering of a chat template's format (Gemma 4 / DiffusionGemma), without a model file. "
      "format: 'auto' (recognize it from chat_template), 'gemma4' or 'gemma4-release'.");
  m.def(
      "chat_format",
      [](const std::string& chat_template) { return std::string(dg::ChatTemplate::detect(chat_template).name()); },
      py::arg("chat_template"),
      "The native format a chat template is recognized as ('gemma4', 'gemma4-release'); raises diffgemma.Error "
      "for a template the native renderer cannot render.");
}

}  // namespace dgpy

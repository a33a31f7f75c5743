// diffgemma._core: the pybind11 module. Thin: it converts, it does not compute.
#include <pybind11/pybind11.h>

#include <cstring>

#include "bindings.h"
#include "diffgemma/error.h"

namespace py = pybind11;

namespace {
PyObject* g_error = nullptr;       // diffgemma.Error
PyObject* g_gguf_error = nullptr;  // diffgemma.GGUFError
// Messages may quote bytes from a file; never let a decoding error replace the real one.
void set_error(PyObject* type, const char* msg) {
  PyObject* s = PyUnicode_DecodeUTF8(msg, static_cast<Py_ssize_t>(std::strlen(msg)), "backslashreplace");
  if (!s) {
    PyErr_Clear();
    PyErr_SetString(type, "(undecodable error message)");
    return;
  }
  PyErr_SetObject(type, s);
  Py_DECREF(s);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "diffgemma native core";

  // diffgemma.Error (RuntimeError) for anything the engine reports; GGUFError is also a
  // ValueError because it describes bad input data.
  // The module holds the references for the life of the interpreter.
  g_error = PyErr_NewException("diffgemma.Error", PyExc_RuntimeError, nullptr);
  PyObject* bases = PyTuple_Pack(2, g_error, PyExc_ValueError);
  g_gguf_error = PyErr_NewException("diffgemma.GGUFError", bases, nullptr);
  Py_DECREF(bases);
  m.add_object("Error", py::reinterpret_borrow<py::object>(g_error));
  m.add_object("GGUFError", py::reinterpret_borrow<py::object>(g_gguf_error));

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const dg::GGUFError& e) {
      set_error(g_gguf_error, e.what());
    } catch (const dg::Error& e) {
      set_error(g_error, e.what());
    }
  });

  dgpy::register_gguf(m);
  dgpy::register_model(m);
  dgpy::register_tokenizer(m);
  dgpy::register_generate(m);
  dgpy::register_quant(m);
}

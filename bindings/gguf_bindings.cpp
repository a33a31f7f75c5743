// GGUFFile for Python: metadata as Python values, tensors as read-only numpy views over the
// mapping (the view keeps the file open). Quantized tensors are raw bytes shaped like gguf-py's
// GGUFReader; BF16 is exposed as uint16 bit patterns.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>

#include "bindings.h"
#include "diffgemma/gguf.h"

namespace py = pybind11;
using dg::GGUFFile;
using dg::GGUFTensor;
using dg::GGUFValue;
using dg::GGUFValueType;

namespace dgpy {
namespace {

// Strings are UTF-8 in every GGUF we know; keep undecodable ones as bytes rather than lose them.
py::object to_py_string(std::string_view s) {
  PyObject* u = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "strict");
  if (u) return py::reinterpret_steal<py::object>(u);
  PyErr_Clear();
  return py::bytes(s.data(), s.size());
}

py::object scalar_to_py(GGUFValueType t, uint64_t bits) {
  GGUFValue v;
  v.type = t;
  v.bits = bits;
  switch (t) {
    case GGUFValueType::FLOAT32:
    case GGUFValueType::FLOAT64:
      return py::float_(v.as_float());
    case GGUFValueType::BOOL:
      return py::bool_(v.as_bool());
    case GGUFValueType::UINT64:
      return py::int_(static_cast<uint64_t>(v.bits));
    default:
      return py::int_(v.as_int());
  }
}

py::object value_to_py(const GGUFValue& v) {
  switch (v.type) {
    case GGUFValueType::STRING:
      return to_py_string(v.str);
    case GGUFValueType::ARRAY: {
      py::list out(v.count);
      if (v.elem_type == GGUFValueType::STRING) {
        for (size_t i = 0; i < v.strings.size(); ++i) out[i] = to_py_string(v.strings[i]);
      } else if (v.elem_type == GGUFValueType::ARRAY) {
        for (size_t i = 0; i < v.arrays.size(); ++i) out[i] = value_to_py(v.arrays[i]);
      } else {
        const uint32_t n = dg::gguf_value_type_size(v.elem_type);
        for (uint64_t i = 0; i < v.count; ++i) {
          uint64_t bits = 0;
          std::memcpy(&bits, v.elems + i * n, n);
          out[i] = scalar_to_py(v.elem_type, bits);
        }
      }
      return std::move(out);
    }
    default:
      return scalar_to_py(v.type, v.bits);
  }
}

py::tuple ggml_shape(const GGUFTensor& t) {
  py::tuple s(t.n_dims);
  for (uint32_t d = 0; d < t.n_dims; ++d) s[d] = t.ne[d];
  return s;
}

// numpy dtype of a plain type, or none for block-quantized types.
py::object plain_dtype(dg::GGMLType type) {
  using dg::GGMLType;
  switch (type) {
    case GGMLType::F32: return py::dtype::of<float>();
    case GGMLType::F16: return py::dtype("float16");
    case GGMLType::F64: return py::dtype::of<double>();
    case GGMLType::I8: return py::dtype::of<int8_t>();
    case GGMLType::I16: return py::dtype::of<int16_t>();
    case GGMLType::I32: return py::dtype::of<int32_t>();
    case GGMLType::I64: return py::dtype::of<int64_t>();
    case GGMLType::BF16: return py::dtype::of<uint16_t>();
    default: return py::none();
  }
}

py::array tensor_view(const std::shared_ptr<GGUFFile>& file, py::object owner, const GGUFTensor& t) {
  // numpy shape is ggml's ne reversed (outermost first).
  std::vector<py::ssize_t> shape(t.ne, t.ne + t.n_dims);
  std::reverse(shape.begin(), shape.end());
  py::object dt = plain_dtype(t.type);
  py::dtype dtype = dt.is_none() ? py::dtype::of<uint8_t>() : py::reinterpret_borrow<py::dtype>(dt);
  if (dt.is_none()) {
    // Block-quantized: the innermost dimension becomes its byte count, as in gguf-py.
    dg::GGMLTypeTraits tr = dg::ggml_type_traits(t.type);
    shape.back() = static_cast<py::ssize_t>(t.ne[0] / tr.block_size * tr.type_size);
  }
  py::array arr(dtype, shape, t.data, owner);
  arr.attr("setflags")(py::arg("write") = false);
  return arr;
}

}  // namespace

void register_gguf(py::module_& m) {
  m.def(
      "ggml_type_traits",
      []() {
        py::dict d;
        for (uint32_t id = 0; id < 256; ++id) {
          if (auto t = dg::ggml_type_traits(id)) {
            d[py::int_(id)] = py::make_tuple(std::string(t->name), t->block_size, t->type_size);
          }
        }
        return d;
      },
      "ggml type id -> (name, block size, bytes per block) for every type this build knows");

  py::class_<GGUFTensor>(m, "GGUFTensorInfo", "One entry of a GGUF tensor table.")
      .def_property_readonly("name", [](const GGUFTensor& t) { return to_py_string(t.name); })
      .def_property_readonly("type", [](const GGUFTensor& t) { return static_cast<uint32_t>(t.type); },
                             "ggml type id (gguf.GGMLQuantizationType value)")
      .def_property_readonly("type_name",
                             [](const GGUFTensor& t) { return std::string(dg::ggml_type_name(t.type)); })
      .def_property_readonly("shape", &ggml_shape, "ggml order: shape[0] is the innermost dimension")
      .def_property_readonly("n_elements", [](const GGUFTensor& t) { return t.n_elements; })
      .def_property_readonly("nbytes", [](const GGUFTensor& t) { return t.nbytes; })
      .def_property_readonly("offset", [](const GGUFTensor& t) { return t.offset; },
                             "offset from the start of the data section")
      .def("__repr__", [](const GGUFTensor& t) {
        std::string s = "GGUFTensorInfo('" + std::string(t.name) + "', " +
                        std::string(dg::ggml_type_name(t.type)) + ", [";
        for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? ", " : "") + std::to_string(t.ne[d]);
        return s + "])";
      });

  py::class_<GGUFFile, std::shared_ptr<GGUFFile>>(
      m, "GGUFFile", "A GGUF file, mapped read-only. Raises GGUFError for a malformed file.")
      .def(py::init([](const std::string& path) {
             py::gil_scoped_release nogil;
             return GGUFFile::open(path);
           }),
           py::arg("path"))
      .def_property_readonly("path", &GGUFFile::path)
      .def_property_readonly("version", &GGUFFile::version)
      .def_property_readonly("alignment", &GGUFFile::alignment)
      .def_property_readonly("data_offset", &GGUFFile::data_offset,
                             "absolute file offset where tensor data starts")
      .def_property_readonly("file_size", &GGUFFile::file_size)
      .def_property_readonly(
          "metadata",
          [](const GGUFFile& f) {
            py::dict d;
            for (const auto& kv : f.metadata()) d[to_py_string(kv.key)] = value_to_py(kv.value);
            return d;
          },
          "all key/value pairs, in file order, as Python values (arrays as lists)")
      .def_property_readonly(
          "metadata_types",
          [](const GGUFFile& f) {
            py::dict d;
            for (const auto& kv : f.metadata()) d[to_py_string(kv.key)] = kv.value.type_string();
            return d;
          },
          "key -> GGUF type, e.g. 'UINT32' or 'ARRAY[STRING]'")
      .def(
          "get",
          [](const GGUFFile& f, const std::string& key, py::object fallback) -> py::object {
            const GGUFValue* v = f.find(key);
            return v ? value_to_py(*v) : fallback;
          },
          py::arg("key"), py::arg("default") = py::none())
      .def("__contains__", [](const GGUFFile& f, const std::string& key) { return f.find(key) != nullptr; })
      .def_property_readonly("tensors", [](const GGUFFile& f) {
        py::list out;
        for (const GGUFTensor& t : f.tensors()) out.append(py::cast(t, py::return_value_policy::copy));
        return out;
      })
      .def(
          "tensor_info",
          [](const GGUFFile& f, const std::string& name) {
            const GGUFTensor* t = f.find_tensor(name);
            if (!t) throw py::key_error("no tensor named '" + name + "'");
            return *t;
          },
          py::arg("name"))
      .def(
          "tensor",
          [](py::object self, const std::string& name) {
            auto f = self.cast<std::shared_ptr<GGUFFile>>();
            const GGUFTensor* t = f->find_tensor(name);
            if (!t) throw py::key_error("no tensor named '" + name + "'");
            return tensor_view(f, self, *t);
          },
          py::arg("name"),
          "read-only numpy view of a tensor's data: numpy shape is the ggml shape reversed; "
          "quantized types are raw bytes (last dimension in bytes), BF16 is uint16 bits")
      .def("__repr__", [](const GGUFFile& f) {
        return "GGUFFile('" + f.path() + "', v" + std::to_string(f.version()) + ", " +
               std::to_string(f.metadata().size()) + " keys, " + std::to_string(f.tensors().size()) +
               " tensors)";
      });
}

}  // namespace dgpy

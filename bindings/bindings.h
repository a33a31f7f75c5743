#pragma once

#include <pybind11/pybind11.h>

namespace dgpy {

void register_gguf(pybind11::module_& m);
void register_model(pybind11::module_& m);
void register_tokenizer(pybind11::module_& m);
void register_generate(pybind11::module_& m);
void register_quant(pybind11::module_& m);

}  // namespace dgpy

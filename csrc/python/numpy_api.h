#pragma once

#include <pybind11/pybind11.h>

namespace fusedgan {
// Adds the numpy front-end's functions to the module.
void add_numpy_api(pybind11::module_& m);
}  // namespace fusedgan

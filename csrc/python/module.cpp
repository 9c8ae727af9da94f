// fusedgan._C: loading it registers the torch operators (csrc/torch); the functions here
// are the pybind11 side: build information and the numpy front-end's kernels.
#include <pybind11/pybind11.h>

#include "../kernel_api.h"
#include "numpy_api.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fusedgan's compiled kernels; the torch operators live under torch.ops.fusedgan";
  m.def(
      "build_info",
      [] {
        py::dict info;
        info["version"] = FUSEDGAN_VERSION;
#ifdef FUSEDGAN_WITH_CUDA
        info["cuda"] = true;
#else
        info["cuda"] = false;
#endif
        info["simd"] = fusedgan::cpu::simd_level();
        return info;
      },
      "version, whether CUDA kernels were built, and the CPU instruction set in use");
  fusedgan::add_numpy_api(m);
}

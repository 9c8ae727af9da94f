// fusedgan._C: loading it registers the torch operators (csrc/torch). The functions here are
// the pybind11 side: build information, and the list of log-likelihood families from which
// the Python functions of each family are made (python/fusedgan/families.py).
#include <pybind11/pybind11.h>

#include "../families.h"
#include "../kernels.h"
#include "../torch/device.h"

namespace py = pybind11;

namespace {

py::list log_likelihood_families() {
  py::list families;
  for (const auto& info : fusedgan::kFamilies) {
    py::list params;
    for (int k = 0; k < info.param_count; ++k) {
      const bool positive = info.params[k].support == fusedgan::math::Support::Positive;
      params.append(py::make_tuple(info.params[k].name, positive ? "positive" : "real"));
    }
    families.append(py::make_tuple(info.name, info.data, params, info.density));
  }
  return families;
}

}  // namespace

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
#ifdef FUSEDGAN_CUDA_SIMULATOR
        info["cuda_simulator"] = true;
#else
        info["cuda_simulator"] = false;
#endif
        return info;
      },
      "version, whether CUDA kernels were built, the CPU instruction set in use, and whether the CUDA "
      "simulator was built");
  m.def("simulate_cuda", &fusedgan::simulate_cuda, py::arg("on"), py::arg("reverse_threads") = false,
        "while on, CPU tensors go to the CUDA kernels run by the CUDA simulator (tests; simulator builds only), "
        "whose blocks run their threads in order of threadIdx or, with reverse_threads, in reverse");
  m.def("log_likelihood_families", &log_likelihood_families,
        "the log-likelihood families in order: (name, data argument, [(parameter, 'real' | 'positive'), ...], density)");
}

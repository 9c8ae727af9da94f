// The kernel tables, expanded from kernels.def: the CPU's (one per instruction set, chosen
// at run time) and CUDA's have the same members, CUDA's taking a Launch last.
#pragma once

#include "kernel_args.h"

namespace fusedgan {

// An elementwise loss's two kernels (kernels.def).
template <class... Extra>
struct ElementwiseKernels {
  bool (*forward)(const ElementwiseArgs&, Reduction, void* out, void* grad_input, Extra...);
  void (*backward)(const ElementwiseBackwardArgs&, Extra...);
};

template <class... Extra>
struct KernelTable {
#define FUSEDGAN_ELEMENTWISE(name, Formula) ElementwiseKernels<Extra...> name;
#define FUSEDGAN_KERNEL(Return, name, ...) Return (*name)(__VA_ARGS__, Extra...);
#include "kernels.def"
};

namespace cpu {
// The table of the best instruction set this CPU supports (FUSEDGAN_SIMD=avx512|avx2|generic
// in the environment narrows the choice), and that set's name.
const KernelTable<>& kernels();
const char* simd_level();
}  // namespace cpu

namespace cuda {
// Defined in CUDA builds only.
const KernelTable<Launch>& kernels();
}  // namespace cuda

}  // namespace fusedgan

#include "../math/losses.h"
#include "kernels.cuh"

namespace fusedgan::cuda {

const KernelTable<Launch>& kernels() {
  static const KernelTable<Launch> table{
#define FUSEDGAN_ELEMENTWISE(name, Formula) {&elementwise_forward<Formula>, &elementwise_backward<Formula>},
#define FUSEDGAN_KERNEL(Return, name, ...) &name,
#include "../kernels.def"
  };
  return table;
}

}  // namespace fusedgan::cuda

#include "../math/losses.h"
#include "kernels.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

const KernelTable<>& kernel_table() {
  static const KernelTable<> table{
#define FUSEDGAN_ELEMENTWISE(name, Formula) {&elementwise_forward<Formula>, &elementwise_backward<Formula>},
#define FUSEDGAN_KERNEL(Return, name, ...) &name,
#include "../kernels.def"
  };
  return table;
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

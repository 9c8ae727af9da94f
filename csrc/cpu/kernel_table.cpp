#include "kernels.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

const KernelTable& kernel_table() {
  static const KernelTable table{
      &bce_with_logits_forward,
      &bce_with_logits_backward,
      &bce_forward,
      &bce_backward,
  };
  return table;
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

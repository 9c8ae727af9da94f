#include "kernels.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

const KernelTable& kernel_table() {
  static const KernelTable table{
      &bce_with_logits_forward,
      &bce_with_logits_backward,
      &bce_forward,
      &bce_backward,
      &discriminator_cost,
      &discriminator_stats,
      &generator_cost,
      &entropy,
      &entropy_backward,
      &entropy_with_logits,
      &entropy_with_logits_backward,
      &binary_entropy_with_logits,
      &binary_entropy_with_logits_backward,
      &log_likelihood,
      &log_likelihood_backward,
      &mixture_log_likelihood,
      &mixture_log_likelihood_backward,
  };
  return table;
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// The CPU kernels of one instruction set (the namespace FUSEDGAN_ISA); kernel_table.cpp
// collects them into the KernelTable that dispatch.cpp chooses from at run time.
#pragma once

#include "../kernel_api.h"
#include "../math/config.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

void bce_with_logits_forward(const BceArgs& args, Reduction reduction, void* out, void* grad_input);
void bce_with_logits_backward(const BceBackwardArgs& args);
bool bce_forward(const BceArgs& args, Reduction reduction, void* out, void* grad_input);
void bce_backward(const BceBackwardArgs& args);
void discriminator_cost(const DiscriminatorArgs& args, void* out, void* grad_real, void* grad_fake);
void discriminator_stats(const DiscriminatorArgs& args, void* out);
void generator_cost(const GeneratorArgs& args, void* out, void* grad);
bool entropy(const RowArgs& args, void* out);
void entropy_backward(const RowArgs& args, const void* grad, void* grad_input);
void entropy_with_logits(const RowArgs& args, void* out);
void entropy_with_logits_backward(const RowArgs& args, const void* grad, void* grad_input);
void binary_entropy_with_logits(const UnaryArgs& args, Reduction reduction, void* out);
void binary_entropy_with_logits_backward(const UnaryArgs& args, Operand grad, double grad_scale, void* grad_input);
void log_likelihood(const LogLikelihoodArgs& args, void* out);
void log_likelihood_backward(const LogLikelihoodArgs& args, const void* grad, const LogLikelihoodGrads& grads);
void mixture_log_likelihood(const MixtureArgs& args, void* out);
void mixture_log_likelihood_backward(const MixtureArgs& args, const void* grad, const MixtureGrads& grads);

const KernelTable& kernel_table();

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

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

const KernelTable& kernel_table();

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

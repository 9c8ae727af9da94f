// The CPU kernels of one instruction set (the namespace FUSEDGAN_ISA), declared from
// kernels.def; kernel_table.cpp collects them into the table that csrc/kernels.cpp chooses
// from at run time.
#pragma once

#include "../kernels.h"
#include "../math/config.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

#define FUSEDGAN_KERNEL(Return, name, ...) Return name(__VA_ARGS__);
#include "../kernels.def"

// The elementwise loops run with one formula of csrc/math (elementwise.cpp).
template <class Formula>
bool elementwise_forward(const ElementwiseArgs& args, Reduction reduction, void* out, void* grad_input);
template <class Formula>
void elementwise_backward(const ElementwiseBackwardArgs& args);

const KernelTable<>& kernel_table();

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

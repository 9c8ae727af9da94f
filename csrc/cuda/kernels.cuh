// The CUDA kernels, declared from kernels.def (each takes a Launch last); kernel_table.cu
// collects them into the table the torch layer calls.
#pragma once

#include "../kernels.h"

namespace fusedgan::cuda {

#define FUSEDGAN_KERNEL(Return, name, ...) Return name(__VA_ARGS__, Launch);
#include "../kernels.def"

// The elementwise loops run with one formula of csrc/math (elementwise.cu).
template <class Formula>
bool elementwise_forward(const ElementwiseArgs& args, Reduction reduction, void* out, void* grad_input, Launch launch);
template <class Formula>
void elementwise_backward(const ElementwiseBackwardArgs& args, Launch launch);

}  // namespace fusedgan::cuda

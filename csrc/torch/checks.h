// Argument checks with messages that name the op and the argument. They read only dtypes,
// devices and symbolic sizes, so the Meta kernels use them too.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "../kernel_args.h"

namespace fusedgan {

using at::Tensor;
using OptionalTensor = std::optional<Tensor>;

void check_floating(const char* op, const char* name, const Tensor& t);
void check_same_device(const char* op, const char* name, const Tensor& t, const Tensor& input);
// A weight or parameter: on input's device, or a 0-dim CPU tensor (as torch's ops accept).
void check_operand_device(const char* op, const char* name, const Tensor& t, const Tensor& input);
// weight-like arguments: floating, on input's device (or 0-dim on the CPU), broadcastable to
// input's shape.
void check_broadcastable(const char* op, const char* name, const OptionalTensor& t, const Tensor& input);
void check_same_shape(const char* op, const char* name, const Tensor& t, const Tensor& input);
Reduction check_reduction(const char* op, int64_t reduction);
// An incoming gradient: floating, on like's device, of the op's output shape.
void check_grad(const char* op, const Tensor& grad, const Tensor& like, c10::SymIntArrayRef output_sizes);
// The unit of an entropy: 1 / log(base), or 1 (nats) without a base.
double check_base(const char* op, const std::optional<double>& base);
// Scales, rates and the like must be positive (not NaN either), checked on the CPU: on CUDA the
// check would cost a host synchronisation, and there such a value gives NaN or -inf.
void check_positive(const char* op, const char* name, const Tensor& t);

}  // namespace fusedgan

// Tensors as the kernels see them: the kernels' dtype, and a Grid with one Operand per tensor
// (kernel_args.h), without copies where the strides allow.
#pragma once

#include <ATen/ATen.h>

#include <initializer_list>
#include <optional>
#include <vector>

#include "../kernel_args.h"

namespace fusedgan {

using at::Tensor;
using OptionalTensor = std::optional<Tensor>;

DType kernel_dtype(at::ScalarType type);

// The same tensor cast to dtype on device, or nothing. (A 0-dim CPU tensor, which the checks
// admit as a weight or parameter of a CUDA input as torch does, is copied to the device.)
OptionalTensor cast(const OptionalTensor& t, at::ScalarType dtype, c10::Device device);

// The Grid for `shape` and one Operand per tensor (each broadcastable to shape; an absent
// tensor reads as 1). Broadcast patterns the Operand cannot express are copied into
// contiguous tensors held by the plan.
struct Plan {
  Grid grid;
  std::vector<Operand> operands;
  std::vector<Tensor> copies;
};
Plan plan(at::IntArrayRef shape, std::initializer_list<const OptionalTensor*> tensors);

// The same with the row/column split fixed: rows = shape[:split], cols = shape[split:].
Plan plan_rows(at::IntArrayRef shape, size_t split, std::initializer_list<const OptionalTensor*> tensors);

}  // namespace fusedgan

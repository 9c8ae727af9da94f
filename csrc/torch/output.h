// New output tensors of the ops.
#pragma once

#include <ATen/ATen.h>

namespace fusedgan {

// A new tensor for an op's elementwise output. Large CPU outputs reuse the memory of earlier
// outputs of the same size once those are freed (output.cpp): their pages need no faulting in,
// which dominated the backward of large inputs.
at::Tensor new_output(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace fusedgan

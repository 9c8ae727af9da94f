// What every op's torch glue shares: argument checks with messages that name the
// argument, the mapping of tensors onto the kernels' Grid/Operand view, and the choice
// of CPU or CUDA kernel.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include <initializer_list>
#include <optional>
#include <vector>

#include "../kernel_api.h"

namespace fusedgan {

using at::Tensor;
using OptionalTensor = std::optional<Tensor>;

// ---- checks (they read only dtypes, devices and symbolic sizes, so Meta kernels use them too)

void check_floating(const char* op, const char* name, const Tensor& t);
void check_same_device(const char* op, const char* name, const Tensor& t, const Tensor& input);
// weight-like arguments: floating, on input's device, broadcastable to input's shape.
void check_broadcastable(const char* op, const char* name, const OptionalTensor& t, const Tensor& input);
void check_same_shape(const char* op, const char* name, const Tensor& t, const Tensor& input);
Reduction check_reduction(const char* op, int64_t reduction);

DType kernel_dtype(at::ScalarType type);

// ---- tensors as the kernels see them

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

// A new tensor for an op's elementwise output. Large CPU outputs are advised to use
// transparent huge pages: a fresh 64 MB buffer then costs 32 page faults instead of 16K
// (measured: filling it 20.6 ms -> 4.4 ms), which dominated the 16M-element backward.
Tensor new_output(at::IntArrayRef sizes, const at::TensorOptions& options);

// The same tensor cast to dtype, or nothing.
OptionalTensor cast(const OptionalTensor& t, at::ScalarType dtype);

// ---- CPU or CUDA

void* current_cuda_stream(const Tensor& like);  // defined only in CUDA builds

// Runs cpu() for CPU tensors and cuda(launch) for CUDA tensors, on like's device, with the
// current stream and a scratch buffer from torch's caching allocator.
template <class Cpu, class Cuda>
decltype(auto) on_device(const Tensor& like, const Cpu& cpu, const Cuda& cuda) {
  if (like.is_cpu()) return cpu();
#ifdef FUSEDGAN_WITH_CUDA
  TORCH_CHECK(like.is_cuda(), "fusedgan: no kernel for ", like.device(), " tensors");
  const c10::DeviceGuard guard(like.device());
  const Tensor workspace = at::empty({cuda::kWorkspaceBytes}, like.options().dtype(at::kByte));
  return cuda(cuda::Launch{current_cuda_stream(like), workspace.data_ptr()});
#else
  (void)cuda;
  TORCH_CHECK(false, "fusedgan: got a ", like.device(), " tensor, but this build has CPU kernels only; ",
              "reinstall with FUSEDGAN_CUDA=ON against a CUDA build of torch");
#endif
}

}  // namespace fusedgan

// Where an op's kernels run: the CPU's table (csrc/cpu), or CUDA's on the tensors' device.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "../kernels.h"

namespace fusedgan {

void* current_cuda_stream(const at::Tensor& like);  // defined in CUDA builds only (cuda/stream.cpp)

// call(kernels) with the CPU's kernel table for CPU tensors, or call(kernels, launch) with
// CUDA's for CUDA tensors, on like's device with its current stream and a scratch buffer
// from torch's caching allocator. One generic lambda serves both:
//   on_device(x, [&](const auto& kernels, auto... launch) { kernels.entropy(args, out, launch...); });
template <class Call>
decltype(auto) on_device(const at::Tensor& like, const Call& call) {
  if (like.is_cpu()) return call(cpu::kernels());
#ifdef FUSEDGAN_WITH_CUDA
  TORCH_CHECK(like.is_cuda(), "fusedgan: no kernel for ", like.device(), " tensors");
  const c10::DeviceGuard guard(like.device());
  const at::Tensor workspace = at::empty({kWorkspaceBytes}, like.options().dtype(at::kByte));
  return call(cuda::kernels(), Launch{current_cuda_stream(like), workspace.data_ptr()});
#else
  TORCH_CHECK(false, "fusedgan: got a ", like.device(), " tensor, but this build has CPU kernels only; ",
              "reinstall with FUSEDGAN_CUDA=ON against a CUDA build of torch");
#endif
}

}  // namespace fusedgan

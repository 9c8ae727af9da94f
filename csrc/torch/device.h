// Where an op's kernels run: the CPU's table (csrc/cpu), or CUDA's on the tensors' device.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include <vector>

#include "../kernels.h"

namespace fusedgan {

void* current_cuda_stream(const at::Tensor& like);  // defined in CUDA builds only (cuda/stream.cpp)

// Whether CPU tensors go to the CUDA kernels, run by the CUDA simulator (builds with
// FUSEDGAN_CUDA_SIMULATOR only; the tests switch it from Python, fusedgan._C), and whether
// its blocks run their threads in reverse order.
bool simulating_cuda();
void simulate_cuda(bool on, bool reverse_threads);

// Launches' scratch buffers from torch's allocator (the caching one on CUDA, on the current
// stream), allocated as the kernels ask and freed when the op returns.
class TensorWorkspace final : public Workspace {
 public:
  explicit TensorWorkspace(const at::Tensor& like) : options_(like.options().dtype(at::kByte)) {}
  void* allocate(int64_t bytes) override { return buffers_.emplace_back(at::empty({bytes}, options_)).data_ptr(); }

 private:
  at::TensorOptions options_;
  std::vector<at::Tensor> buffers_;
};

// call(kernels) with the CPU's kernel table for CPU tensors, or call(kernels, launch) with
// CUDA's for CUDA tensors (and for CPU tensors while simulating), on like's device with its
// current stream. One generic lambda serves both:
//   on_device(x, [&](const auto& kernels, auto... launch) { kernels.entropy(args, out, launch...); });
template <class Call>
decltype(auto) on_device(const at::Tensor& like, const Call& call) {
  if (like.is_cpu()) {
#ifdef FUSEDGAN_CUDA_SIMULATOR
    if (simulating_cuda()) {
      TensorWorkspace workspace(like);
      return call(cuda::kernels(), Launch{nullptr, &workspace});
    }
#endif
    return call(cpu::kernels());
  }
#ifdef FUSEDGAN_WITH_CUDA
  TORCH_CHECK(like.is_cuda(), "fusedgan: no kernel for ", like.device(), " tensors");
  const c10::DeviceGuard guard(like.device());
  TensorWorkspace workspace(like);
  return call(cuda::kernels(), Launch{current_cuda_stream(like), &workspace});
#else
  TORCH_CHECK(false, "fusedgan: got a ", like.device(), " tensor, but this build has CPU kernels only; ",
              "reinstall with FUSEDGAN_CUDA=ON against a CUDA build of torch");
#endif
}

}  // namespace fusedgan

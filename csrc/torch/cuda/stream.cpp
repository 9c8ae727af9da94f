// Compiled only when the CUDA kernels are.
#include <c10/cuda/CUDAStream.h>

#include "../device.h"

namespace fusedgan {

void* current_cuda_stream(const at::Tensor& like) {
  return c10::cuda::getCurrentCUDAStream(like.device().index()).stream();
}

}  // namespace fusedgan

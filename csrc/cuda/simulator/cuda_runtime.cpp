// The CUDA simulator's one setting that the library outside csrc/cuda sets (csrc/torch/device.cpp).
#include "cuda_runtime.h"

namespace fusedgan::cuda::simulator {

void set_thread_order(bool reversed) { reversed_thread_order.store(reversed, std::memory_order_relaxed); }

}  // namespace fusedgan::cuda::simulator

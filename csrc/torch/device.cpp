#include "device.h"

#include <atomic>

#ifdef FUSEDGAN_CUDA_SIMULATOR
namespace fusedgan::cuda::simulator {
void set_thread_order(bool reversed);  // simulator/cuda_runtime.cpp
}  // namespace fusedgan::cuda::simulator
#endif

namespace fusedgan {
namespace {
std::atomic<bool> simulation{false};
}  // namespace

bool simulating_cuda() { return simulation.load(std::memory_order_relaxed); }

void simulate_cuda(bool on, bool reverse_threads) {
#ifdef FUSEDGAN_CUDA_SIMULATOR
  simulation.store(on, std::memory_order_relaxed);
  cuda::simulator::set_thread_order(reverse_threads);
#else
  (void)reverse_threads;
  TORCH_CHECK(!on, "fusedgan: this build has no CUDA simulator; build with FUSEDGAN_CUDA_SIMULATOR=ON (make install does)");
#endif
}

}  // namespace fusedgan

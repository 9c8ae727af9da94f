// The CUDA simulator: what the kernels of csrc/cuda use of CUDA, on the CPU, so that the very
// sources nvcc compiles run in the tests without a GPU (as numba's NUMBA_ENABLE_CUDASIM does
// for Python kernels). The build compiles csrc/cuda/*.cu with the host compiler, with
// FUSEDGAN_CUDA_SIMULATOR defined and this folder first on the include path, so that
// `#include <cuda_runtime.h>` finds this file.
//
// The execution model: a launch runs its blocks one after another. A block's threads are
// fibers (ucontext) that run in turn, each until it reaches __syncthreads() or returns; when
// every thread has, the next phase begins. So a missing barrier changes the results every
// time, not by chance. A thread that has returned counts as having reached every later
// barrier, as on the GPU. __shared__ variables are function statics: one instance, which each
// block in turn uses. The threads of a phase run in order of threadIdx, or in reverse order
// (set_thread_order): code that is right only in one order, a race on the GPU, gives different
// results in the two. The grid is capped (the kernels' grid-stride loops cover any size) but
// always has more than one block, so that the reductions across blocks run.
#pragma once

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local dim3 threadIdx, blockIdx, blockDim, gridDim;

using cudaStream_t = void*;
enum cudaError_t { cudaSuccess = 0 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }
inline cudaError_t cudaMemsetAsync(void* data, int value, size_t bytes, cudaStream_t) {
  std::memset(data, value, bytes);
  return cudaSuccess;
}

inline unsigned atomicAdd(unsigned* address, unsigned value) {
  return std::atomic_ref<unsigned>(*address).fetch_add(value);
}
inline double atomicAdd(double* address, double value) { return std::atomic_ref<double>(*address).fetch_add(value); }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

namespace fusedgan::cuda::simulator {

inline constexpr int kMinBlocks = 2;  // so that the last block's addition of the block sums runs
inline constexpr int kMaxBlocks = 4;
inline constexpr size_t kStackBytes = size_t(256) << 10;

// The order in which the threads of a phase run (reversed: from the last threadIdx down);
// set from the tests through set_thread_order (cuda_runtime.cpp).
inline std::atomic<bool> reversed_thread_order{false};
void set_thread_order(bool reversed);

// The threads of the block at hand, as fibers, and the scheduler that runs them in phases.
// A fiber starts on its own stack through ucontext; after that, switches are _setjmp/_longjmp,
// which do not save the signal mask (a system call per switch with swapcontext), so that a
// block's thousands of switches per row reduction cost microseconds. (The build turns
// _FORTIFY_SOURCE off for these files: its checked longjmp refuses to jump between stacks.)
class Block {
 public:
  void run(unsigned threads, const std::function<void()>& body) {
    body_ = &body;
    while (fibers_.size() < threads) fibers_.emplace_back(new char[kStackBytes]);
    for (unsigned i = 0; i < threads; ++i) fibers_[i].state = Fiber::kNew;
    const bool reversed = reversed_thread_order.load(std::memory_order_relaxed);
    for (unsigned finished = 0; finished < threads;) {  // a phase: every unfinished thread in turn
      finished = 0;
      for (unsigned j = 0; j < threads; ++j) {
        const unsigned i = reversed ? threads - 1 - j : j;
        if (fibers_[i].state != Fiber::kDone) resume(i);
        finished += fibers_[i].state == Fiber::kDone;
      }
    }
  }

  // __syncthreads(): back to the scheduler until the next phase.
  void sync() {
    if (!_setjmp(fibers_[current_].resume_at)) _longjmp(scheduler_, 1);
  }

 private:
  struct Fiber {
    enum State { kNew, kWaiting, kDone };
    explicit Fiber(char* memory) : stack(memory) {}
    std::unique_ptr<char[]> stack;
    jmp_buf resume_at;
    State state = kNew;
  };

  void resume(unsigned i) {
    current_ = i;
    threadIdx = {i, 0, 0};
    Fiber& fiber = fibers_[i];
    if (_setjmp(scheduler_)) return;  // the fiber came back: at a barrier, or done
    if (fiber.state == Fiber::kWaiting) _longjmp(fiber.resume_at, 1);
    fiber.state = Fiber::kWaiting;
    ucontext_t here, start;
    getcontext(&start);
    start.uc_stack.ss_sp = fiber.stack.get();
    start.uc_stack.ss_size = kStackBytes;
    start.uc_link = nullptr;
    makecontext(&start, &Block::start, 0);
    swapcontext(&here, &start);  // never returns here: the fiber jumps to scheduler_
  }

  static void start();

  std::vector<Fiber> fibers_;
  jmp_buf scheduler_;
  unsigned current_ = 0;
  const std::function<void()>* body_ = nullptr;
};

inline thread_local Block block;

inline void Block::start() {
  (*block.body_)();
  block.fibers_[block.current_].state = Fiber::kDone;
  _longjmp(block.scheduler_, 1);
}

// kernel<<<blocks, threads>>>(args...), its grid capped to [kMinBlocks, kMaxBlocks] blocks.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), int blocks, int threads, const Args&... args) {
  const unsigned grid = unsigned(std::clamp(blocks, kMinBlocks, kMaxBlocks));
  gridDim = {grid, 1, 1};
  blockDim = {unsigned(threads), 1, 1};
  const std::function<void()> body = [&] { kernel(args...); };
  for (unsigned b = 0; b < grid; ++b) {
    blockIdx = {b, 0, 0};
    block.run(unsigned(threads), body);
  }
}

}  // namespace fusedgan::cuda::simulator

inline void __syncthreads() { fusedgan::cuda::simulator::block.sync(); }

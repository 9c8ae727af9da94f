// The loops every CUDA kernel runs, over raw pointers (no torch headers, so nvcc can
// compile them anywhere). Elementwise: a grid-stride loop. Reductions: per-thread double
// sums, a fixed tree per block, and the last block to finish adds the block sums in block
// order, all in one launch. The grid size depends only on n, so a reduction gives the
// same bits on every run.
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <type_traits>
#include <string>

#include "../math/scalar.h"
#include "../math/storage.h"
#include "kernels.cuh"

namespace fusedgan::cuda {

inline constexpr int kThreads = 256;
inline constexpr int kMaxBlocks = 1024;

inline int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

inline cudaStream_t stream_of(Launch launch) { return static_cast<cudaStream_t>(launch.stream); }

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string("fusedgan: ") + what + ": " + cudaGetErrorString(status));
}

template <class T>
__device__ __forceinline__ math::compute_t<T> load(const Operand& operand, int64_t row, int64_t col) {
  if (!operand.data) return math::compute_t<T>(1);
  const T* p = static_cast<const T*>(operand.data) + row * operand.row_stride;
  return math::widen(operand.broadcast_col ? *p : p[col]);
}

// Sums v over the block in a fixed tree; the result is valid in thread 0.
__device__ __forceinline__ double block_sum(double v) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const double total = partial[0];
  __syncthreads();
  return total;
}

template <class T, class F, class... Operands>
__global__ void __launch_bounds__(kThreads) map_kernel(Grid grid, T* out, F f, Operands... operands) {
  const int64_t n = grid.numel();
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const int64_t row = i / grid.cols;
    const int64_t col = i - row * grid.cols;
    math::narrow_into(out + i, f(load<T>(operands, row, col)...));
  }
}

// Adds an element's result to a thread's sums: its value (and stores its gradient, where it
// gives one and grad is not null), or its two sums.
template <class T, class Result>
__device__ __forceinline__ void accumulate(const Result& result, T* grad, int64_t i, double* sums) {
  if constexpr (math::kGivesGrad<Result>) {
    sums[0] += double(result.value);
    if (grad) math::narrow_into(grad + i, result.grad);
  } else if constexpr (math::kGivesTwoSums<Result>) {
    sums[0] += double(result.first);
    sums[1] += double(result.second);
  } else {
    sums[0] += double(result);
  }
}

// Where a reduction's blocks leave their sums (kSums per block) and count themselves done.
inline constexpr int kSums = 4;
struct Scratch {
  double* block_sums;
  unsigned* blocks_done;
};

// Adds every thread's kSums sums over the whole grid in a fixed order: each block's tree sum
// goes to block_sums, and the last block to finish adds those in block order. Returns true
// in thread 0 of that last block, with the totals in sums.
__device__ __forceinline__ bool grid_sum(double (&sums)[kSums], Scratch scratch) {
  for (int k = 0; k < kSums; ++k) sums[k] = block_sum(sums[k]);
  __shared__ bool last_block;
  if (threadIdx.x == 0) {
    for (int k = 0; k < kSums; ++k) scratch.block_sums[blockIdx.x * kSums + k] = sums[k];
    // The fences around the ticket: a release of this block's sums before it, an acquire of
    // the other blocks' after it (then the barrier hands them on to this block's threads).
    __threadfence();
    last_block = atomicAdd(scratch.blocks_done, 1u) == gridDim.x - 1;
    __threadfence();
  }
  __syncthreads();
  if (!last_block) return false;
  for (int k = 0; k < kSums; ++k) {
    double total = 0;
    for (int b = threadIdx.x; b < gridDim.x; b += kThreads) {
      total += static_cast<volatile double*>(scratch.block_sums)[b * kSums + k];
    }
    sums[k] = block_sum(total);
  }
  return threadIdx.x == 0;
}

template <class T, class F, class... Operands>
__global__ void __launch_bounds__(kThreads)
    sum_kernel(Grid grid, double scale, T* out, T* grad, Scratch scratch, F f, Operands... operands) {
  const int64_t n = grid.numel();
  double sums[kSums] = {};
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const int64_t row = i / grid.cols;
    const int64_t col = i - row * grid.cols;
    accumulate(f(load<T>(operands, row, col)...), grad, i, sums);
  }
  if (grid_sum(sums, scratch)) math::narrow_into(out, sums[0] * scale);
}

// The two batches' indices in one range, real first; sums[0..1] are the real batch's,
// sums[2..3] the fake one's, and finish(sums) writes the outputs.
template <class T, class FReal, class FFake, class Finish>
__global__ void __launch_bounds__(kThreads)
    two_batch_kernel(Batch real, T* grad_real, FReal f_real, Batch fake, T* grad_fake, FFake f_fake, Scratch scratch,
                     Finish finish) {
  const int64_t n_real = real.grid.numel();
  const int64_t n = n_real + fake.grid.numel();
  double sums[kSums] = {};
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    if (i < n_real) {
      const int64_t row = i / real.grid.cols;
      accumulate(f_real(load<T>(real.logits, row, i - row * real.grid.cols)), grad_real, i, sums);
    } else {
      const int64_t j = i - n_real;
      const int64_t row = j / fake.grid.cols;
      accumulate(f_fake(load<T>(fake.logits, row, j - row * fake.grid.cols)), grad_fake, j, sums + 2);
    }
  }
  if (grid_sum(sums, scratch)) finish(sums);
}

// One thread per row.
template <class RowFunction>
__global__ void __launch_bounds__(kThreads) rows_kernel(int64_t rows, RowFunction row_function) {
  for (int64_t row = int64_t(blockIdx.x) * kThreads + threadIdx.x; row < rows; row += int64_t(gridDim.x) * kThreads) {
    row_function(row);
  }
}

template <class T, class Fa, class Fb, class... Operands>
__global__ void __launch_bounds__(kThreads)
    map_pair_kernel(Grid grid, T* out_a, Fa fa, T* out_b, Fb fb, Operands... operands) {
  const int64_t n = grid.numel();
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const int64_t row = i / grid.cols;
    const int64_t col = i - row * grid.cols;
    if (out_a) math::narrow_into(out_a + i, fa(load<T>(operands, row, col)...));
    if (out_b) math::narrow_into(out_b + i, fb(load<T>(operands, row, col)...));
  }
}

static_assert(kWorkspaceBytes >= kMaxBlocks * kSums * sizeof(double) + sizeof(unsigned));

// The launch's workspace as a Scratch, its counter zeroed on the stream.
inline Scratch scratch_for(Launch launch) {
  auto* block_sums = static_cast<double*>(launch.workspace->bytes());
  auto* blocks_done = reinterpret_cast<unsigned*>(block_sums + kMaxBlocks * kSums);
  check(cudaMemsetAsync(blocks_done, 0, sizeof(unsigned), stream_of(launch)), "cudaMemsetAsync");
  return {block_sums, blocks_done};
}

// Every kernel starts here, the one place that spells a launch: on the GPU, or in the CUDA
// simulator (simulator/cuda_runtime.h), which runs the same kernel on the CPU.
template <class... Params, class... Args>
void launch(void (*kernel)(Params...), int blocks, Launch where, const Args&... args) {
#if defined(FUSEDGAN_CUDA_SIMULATOR)
  simulator::launch(kernel, blocks, kThreads, args...);
#else
  kernel<<<blocks, kThreads, 0, stream_of(where)>>>(args...);
#endif
  check(cudaGetLastError(), "kernel launch");
}

// Host side: sums (or averages) f over the operands into out[0]. Where f returns
// ValueAndGrad, the gradients are stored elementwise in grad.
template <class T, class F, class... Operands>
void reduce(Grid grid, Reduction reduction, void* out, void* grad, Launch where, F f, const Operands&... operands) {
  const int64_t n = grid.numel();
  const Scratch scratch = scratch_for(where);
  // An empty sum is 0 and an empty mean 0 * inf = NaN, as in torch; one block writes it.
  launch(sum_kernel<T, F, Operands...>, n == 0 ? 1 : blocks_for(n), where, grid, reduction_scale(grid, reduction),
         static_cast<T*>(out), static_cast<T*>(grad), scratch, f, operands...);
}

// Host side: f over the operands, stored per element (None) or summed into out[0].
template <class T, class F, class... Operands>
void map_reduce(Grid grid, Reduction reduction, void* out, Launch where, F f, const Operands&... operands) {
  if (reduction != Reduction::None) return reduce<T>(grid, reduction, out, nullptr, where, f, operands...);
  const int64_t n = grid.numel();
  if (n == 0) return;
  launch(map_kernel<T, F, Operands...>, blocks_for(n), where, grid, static_cast<T*>(out), f, operands...);
}

// Host side: the two batches' kernel (the batches are never empty).
template <class T, class FReal, class FFake, class Finish>
void reduce_two_batches(const Batch& real, void* grad_real, FReal f_real, const Batch& fake, void* grad_fake,
                        FFake f_fake, Finish finish, Launch where) {
  const int64_t n = real.grid.numel() + fake.grid.numel();
  const Scratch scratch = scratch_for(where);
  launch(two_batch_kernel<T, FReal, FFake, Finish>, blocks_for(n), where, real, static_cast<T*>(grad_real), f_real,
         fake, static_cast<T*>(grad_fake), f_fake, scratch, finish);
}

template <class RowFunction>
void for_each_row(int64_t rows, RowFunction row_function, Launch where) {
  if (rows == 0) return;
  launch(rows_kernel<RowFunction>, blocks_for(rows), where, rows, row_function);
}

template <class T, class Fa, class Fb, class... Operands>
void map_pair(Grid grid, void* out_a, Fa fa, void* out_b, Fb fb, Launch where, const Operands&... operands) {
  const int64_t n = grid.numel();
  if (n == 0) return;
  launch(map_pair_kernel<T, Fa, Fb, Operands...>, blocks_for(n), where, grid, static_cast<T*>(out_a), fa,
         static_cast<T*>(out_b), fb, operands...);
}

}  // namespace fusedgan::cuda

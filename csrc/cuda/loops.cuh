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

#include "../kernel_api.h"
#include "../math/storage.h"

namespace fusedgan::cuda {

inline constexpr int kThreads = 256;
inline constexpr int kMaxBlocks = 1024;
static_assert(kWorkspaceBytes >= kMaxBlocks * sizeof(double) + sizeof(unsigned));

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

template <class T, class F, class... Operands>
__global__ void __launch_bounds__(kThreads)
    sum_kernel(Grid grid, double scale, T* out, T* grad, double* block_sums, unsigned* blocks_done, F f,
               Operands... operands) {
  const int64_t n = grid.numel();
  double sum = 0;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const int64_t row = i / grid.cols;
    const int64_t col = i - row * grid.cols;
    const auto result = f(load<T>(operands, row, col)...);
    if constexpr (math::kGivesGrad<std::decay_t<decltype(result)>>) {
      sum += double(result.value);
      math::narrow_into(grad + i, result.grad);
    } else {
      sum += double(result);
    }
  }
  sum = block_sum(sum);
  __shared__ bool last_block;
  if (threadIdx.x == 0) {
    block_sums[blockIdx.x] = sum;
    __threadfence();
    last_block = atomicAdd(blocks_done, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (!last_block) return;
  double total = 0;
  for (int b = threadIdx.x; b < gridDim.x; b += kThreads) total += static_cast<volatile double*>(block_sums)[b];
  total = block_sum(total);
  if (threadIdx.x == 0) {
    math::narrow_into(out, total * scale);
    *blocks_done = 0;
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

// Host side: sums (or averages) f over the operands into out[0]. Where f returns
// ValueAndGrad, the gradients are stored elementwise in grad.
template <class T, class F, class... Operands>
void reduce(Grid grid, Reduction reduction, void* out, void* grad, Launch launch, F f, const Operands&... operands) {
  const int64_t n = grid.numel();
  auto* block_sums = static_cast<double*>(launch.workspace);
  auto* blocks_done = reinterpret_cast<unsigned*>(block_sums + kMaxBlocks);
  check(cudaMemsetAsync(blocks_done, 0, sizeof(unsigned), stream_of(launch)), "cudaMemsetAsync");
  const double scale = n == 0 ? (reduction == Reduction::Mean ? __builtin_nan("") : 0.0) : reduction_scale(grid, reduction);
  sum_kernel<T><<<n == 0 ? 1 : blocks_for(n), kThreads, 0, stream_of(launch)>>>(
      grid, scale, static_cast<T*>(out), static_cast<T*>(grad), block_sums, blocks_done, f, operands...);
  check(cudaGetLastError(), "kernel launch");
}

// Host side: f over the operands, stored per element (None) or summed into out[0].
template <class T, class F, class... Operands>
void map_reduce(Grid grid, Reduction reduction, void* out, Launch launch, F f, const Operands&... operands) {
  if (reduction != Reduction::None) return reduce<T>(grid, reduction, out, nullptr, launch, f, operands...);
  const int64_t n = grid.numel();
  if (n == 0) return;
  map_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(launch)>>>(grid, static_cast<T*>(out), f, operands...);
  check(cudaGetLastError(), "kernel launch");
}

template <class T, class Fa, class Fb, class... Operands>
void map_pair(Grid grid, void* out_a, Fa fa, void* out_b, Fb fb, Launch launch, const Operands&... operands) {
  const int64_t n = grid.numel();
  if (n == 0) return;
  map_pair_kernel<T><<<blocks_for(n), kThreads, 0, stream_of(launch)>>>(grid, static_cast<T*>(out_a), fa,
                                                                       static_cast<T*>(out_b), fb, operands...);
  check(cudaGetLastError(), "kernel launch");
}

}  // namespace fusedgan::cuda

// The loops every CUDA kernel runs, over raw pointers (no torch headers, so nvcc can
// compile them anywhere). Elementwise: a grid-stride loop. Reductions over everything:
// per-thread double sums, a fixed tree per block, and the last block to finish adds the
// block sums in block order, all in one launch. Rows (data sets, entropy rows): a group of
// threads per row, its lanes reading consecutive elements, long rows in slices whose sums
// are added in order by a second launch. Grids and trees depend only on the sizes, so every
// reduction gives the same bits on every run.
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
inline constexpr int kMaxBlocks = 1024;     // of a grid-wide reduction (its scratch holds a sum per block)
inline constexpr int kMaxRowBlocks = 4096;  // of the row kernels

inline int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return int(blocks < kMaxBlocks ? blocks : kMaxBlocks);
}

inline cudaStream_t stream_of(Launch launch) { return static_cast<cudaStream_t>(launch.stream); }

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string("fusedgan: ") + what + ": " + cudaGetErrorString(status));
}

// Where element i of a grid lies: its row and column, or only i where every operand is dense
// (kFlat), which spares the elementwise loops a 64-bit division per element.
template <bool kFlat>
struct Index {
  int64_t flat, row, col;
};

template <bool kFlat>
__device__ __forceinline__ Index<kFlat> index_of(const Grid& grid, int64_t i) {
  if constexpr (kFlat) {
    return {i, 0, 0};
  } else {
    const int64_t row = i / grid.cols;
    return {i, row, i - row * grid.cols};
  }
}

// Whether an operand reads element i at data[i] (an absent one reads as 1 anywhere).
inline bool dense(const Grid& grid, const Operand& operand) {
  return !operand.data ||
         ((!operand.broadcast_col || grid.cols == 1) && (operand.row_stride == grid.cols || grid.rows <= 1));
}

// f(std::true_type) or f(std::false_type): a run-time flag as a kernel's template argument.
template <class F>
void with_flag(bool flag, const F& f) {
  if (flag) return f(std::true_type{});
  f(std::false_type{});
}

// with_flag(whether every operand is dense, f): the kFlat of the elementwise kernels.
template <class F, class... Operands>
void with_flatness(const Grid& grid, const F& f, const Operands&... operands) {
  with_flag((dense(grid, operands) && ...), f);
}

template <class T, bool kFlat>
__device__ __forceinline__ math::compute_t<T> load(const Operand& operand, const Index<kFlat>& at) {
  if (!operand.data) return math::compute_t<T>(1);
  const T* p = static_cast<const T*>(operand.data);
  if constexpr (kFlat) {
    return math::widen(p[at.flat]);
  } else {
    p += at.row * operand.row_stride;
    return math::widen(operand.broadcast_col ? *p : p[at.col]);
  }
}

template <class T>
__device__ __forceinline__ math::compute_t<T> load(const Operand& operand, int64_t row, int64_t col) {
  return load<T>(operand, Index<false>{0, row, col});
}

// Combines v over each group of `size` consecutive threads (a power of two) in a fixed tree,
// combine(lower lane's, upper lane's), and returns the result to every thread of the group.
// Every thread of the block calls it, the same number of times.
template <class Combine>
__device__ __forceinline__ double group_reduce(double v, int size, Combine combine) {
  __shared__ double partial[kThreads];
  partial[threadIdx.x] = v;
  __syncthreads();
  const int lane = threadIdx.x & (size - 1);
  for (int stride = size / 2; stride > 0; stride /= 2) {
    if (lane < stride) partial[threadIdx.x] = combine(partial[threadIdx.x], partial[threadIdx.x + stride]);
    __syncthreads();
  }
  const double result = partial[threadIdx.x - lane];
  __syncthreads();
  return result;
}

struct Plus {
  __device__ double operator()(double a, double b) const { return a + b; }
};

__device__ __forceinline__ double group_sum(double v, int size) { return group_reduce(v, size, Plus{}); }
__device__ __forceinline__ double block_sum(double v) { return group_sum(v, kThreads); }

template <class T, bool kFlat, class F, class... Operands>
__global__ void __launch_bounds__(kThreads) map_kernel(Grid grid, T* out, F f, Operands... operands) {
  const int64_t n = grid.numel();
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const Index<kFlat> at = index_of<kFlat>(grid, i);
    math::narrow_into(out + i, f(load<T>(operands, at)...));
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

template <class T, bool kFlat, class F, class... Operands>
__global__ void __launch_bounds__(kThreads)
    sum_kernel(Grid grid, double scale, T* out, T* grad, Scratch scratch, F f, Operands... operands) {
  const int64_t n = grid.numel();
  double sums[kSums] = {};
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const Index<kFlat> at = index_of<kFlat>(grid, i);
    accumulate(f(load<T>(operands, at)...), grad, i, sums);
  }
  if (grid_sum(sums, scratch)) math::narrow_into(out, sums[0] * scale);
}

// The two batches' indices in one range, real first; sums[0..1] are the real batch's,
// sums[2..3] the fake one's, and finish(sums) writes the outputs.
template <class T, bool kFlat, class FReal, class FFake, class Finish>
__global__ void __launch_bounds__(kThreads)
    two_batch_kernel(Batch real, T* grad_real, FReal f_real, Batch fake, T* grad_fake, FFake f_fake, Scratch scratch,
                     Finish finish) {
  const int64_t n_real = real.grid.numel();
  const int64_t n = n_real + fake.grid.numel();
  double sums[kSums] = {};
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    if (i < n_real) {
      accumulate(f_real(load<T>(real.logits, index_of<kFlat>(real.grid, i))), grad_real, i, sums);
    } else {
      const int64_t j = i - n_real;
      accumulate(f_fake(load<T>(fake.logits, index_of<kFlat>(fake.grid, j))), grad_fake, j, sums + 2);
    }
  }
  if (grid_sum(sums, scratch)) finish(sums);
}

template <class T, bool kFlat, class Fa, class Fb, class... Operands>
__global__ void __launch_bounds__(kThreads)
    map_pair_kernel(Grid grid, T* out_a, Fa fa, T* out_b, Fb fb, Operands... operands) {
  const int64_t n = grid.numel();
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const Index<kFlat> at = index_of<kFlat>(grid, i);
    if (out_a) math::narrow_into(out_a + i, fa(load<T>(operands, at)...));
    if (out_b) math::narrow_into(out_b + i, fb(load<T>(operands, at)...));
  }
}

// ---- rows: a group of threads per row

// The threads given to a row of `length` elements: its length rounded up to a power of two,
// at most a block, so that short rows share a block rather than leave most of it idle.
inline int group_size_for(int64_t length) {
  int size = 1;
  while (size < kThreads && size < length) size *= 2;
  return size;
}

// body(row, lane, group) for every row, a group of threads each; the threads of a block's
// last pass that have no row get row -1 (they still take part in the group reductions).
template <class Body>
__global__ void __launch_bounds__(kThreads) row_groups_kernel(int64_t rows, int group, Body body) {
  const int per_block = kThreads / group;
  for (int64_t first = int64_t(blockIdx.x) * per_block; first < rows; first += int64_t(gridDim.x) * per_block) {
    const int64_t row = first + threadIdx.x / group;
    body(row < rows ? row : -1, int(threadIdx.x & (group - 1)), group);
  }
}

// Rows longer than this are summed in slices, each by a group, and the slice sums then added
// in order: a long row (or dim=None's single one) spreads over many blocks.
inline constexpr int64_t kSliceLength = 32 * kThreads;

struct Slices {
  int64_t rows, length, per_row;
  FUSEDGAN_HOST_DEVICE int64_t count() const { return rows * per_row; }
};

// One slice of a row: element(row, col, sums) adds element col to the group's kRowSums sums;
// then finish(row, sums) where the slice is the whole row, or the sums go to `partials`.
template <int kRowSums, class Element, class Finish>
struct SliceSums {
  Slices s;
  Element element;
  Finish finish;
  double* partials;
  __device__ void operator()(int64_t slice, int lane, int group) const {
    double sums[kRowSums] = {};
    const int64_t row = slice < 0 ? 0 : slice / s.per_row;
    if (slice >= 0) {
      const int64_t begin = (slice - row * s.per_row) * kSliceLength;
      const int64_t end = begin + kSliceLength < s.length ? begin + kSliceLength : s.length;
      for (int64_t col = begin + lane; col < end; col += group) element(row, col, sums);
    }
    for (int k = 0; k < kRowSums; ++k) sums[k] = group_sum(sums[k], group);
    if (slice < 0 || lane != 0) return;
    if (s.per_row == 1) return finish(row, sums);
    for (int k = 0; k < kRowSums; ++k) partials[slice * kRowSums + k] = sums[k];
  }
};

// A row's slice sums, added in slice order.
template <int kRowSums, class Finish>
struct RowTotals {
  Slices s;
  const double* partials;
  Finish finish;
  __device__ void operator()(int64_t row, int, int) const {
    if (row < 0) return;
    double sums[kRowSums] = {};
    for (int64_t slice = row * s.per_row; slice < (row + 1) * s.per_row; ++slice) {
      for (int k = 0; k < kRowSums; ++k) sums[k] += partials[slice * kRowSums + k];
    }
    finish(row, sums);
  }
};

// Coordinate c of point i of a data set of points (x (N, D) of a set of the mixture or the
// multivariate normal), in double.
template <class Set>
struct SetPoint {
  const Set& s;
  int64_t i;
  __device__ double operator()(int64_t c) const { return math::widen(s.x[i * s.d + c]); }
};

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

// Host side: body(row, lane, group) over rows of `length` (see row_groups_kernel).
template <class Body>
void for_each_row_group(int64_t rows, int64_t length, Body body, Launch where) {
  if (rows == 0) return;
  const int group = group_size_for(length);
  const int64_t blocks = (rows + kThreads / group - 1) / (kThreads / group);
  launch(row_groups_kernel<Body>, int(blocks < kMaxRowBlocks ? blocks : kMaxRowBlocks), where, rows, group, body);
}

// Host side: per row, kRowSums sums of element(row, col, sums) over its columns, handed to
// finish(row, sums) (by one thread). Same bits on every run: the slices and the trees are fixed.
template <int kRowSums, class Element, class Finish>
void sum_rows(int64_t rows, int64_t length, Element element, Finish finish, Launch where) {
  if (rows == 0) return;
  const Slices s{rows, length, length > kSliceLength ? (length + kSliceLength - 1) / kSliceLength : 1};
  double* partials = nullptr;
  if (s.per_row > 1) {
    partials = static_cast<double*>(where.workspace->allocate(s.count() * kRowSums * int64_t(sizeof(double))));
  }
  for_each_row_group(s.count(), length < kSliceLength ? length : kSliceLength,
                     SliceSums<kRowSums, Element, Finish>{s, element, finish, partials}, where);
  if (s.per_row > 1) for_each_row_group(rows, 1, RowTotals<kRowSums, Finish>{s, partials, finish}, where);
}

static_assert(kWorkspaceBytes >= kMaxBlocks * kSums * sizeof(double) + sizeof(unsigned));

// A grid-wide reduction's scratch, its counter zeroed on the stream.
inline Scratch scratch_for(Launch launch) {
  auto* block_sums = static_cast<double*>(launch.workspace->allocate(kWorkspaceBytes));
  auto* blocks_done = reinterpret_cast<unsigned*>(block_sums + kMaxBlocks * kSums);
  check(cudaMemsetAsync(blocks_done, 0, sizeof(unsigned), stream_of(launch)), "cudaMemsetAsync");
  return {block_sums, blocks_done};
}

// Host side: sums (or averages) f over the operands into out[0]. Where f returns
// ValueAndGrad, the gradients are stored elementwise in grad.
template <class T, class F, class... Operands>
void reduce(Grid grid, Reduction reduction, void* out, void* grad, Launch where, F f, const Operands&... operands) {
  const int64_t n = grid.numel();
  const Scratch scratch = scratch_for(where);
  with_flatness(grid, [&](auto flat) {
    // An empty sum is 0 and an empty mean 0 * inf = NaN, as in torch; one block writes it.
    launch(sum_kernel<T, decltype(flat)::value, F, Operands...>, n == 0 ? 1 : blocks_for(n), where, grid,
           reduction_scale(grid, reduction), static_cast<T*>(out), static_cast<T*>(grad), scratch, f, operands...);
  }, operands...);
}

// Host side: f over the operands, stored per element (None) or summed into out[0].
template <class T, class F, class... Operands>
void map_reduce(Grid grid, Reduction reduction, void* out, Launch where, F f, const Operands&... operands) {
  if (reduction != Reduction::None) return reduce<T>(grid, reduction, out, nullptr, where, f, operands...);
  const int64_t n = grid.numel();
  if (n == 0) return;
  with_flatness(grid, [&](auto flat) {
    launch(map_kernel<T, decltype(flat)::value, F, Operands...>, blocks_for(n), where, grid, static_cast<T*>(out), f, operands...);
  }, operands...);
}

// Host side: the two batches' kernel (the batches are never empty).
template <class T, class FReal, class FFake, class Finish>
void reduce_two_batches(const Batch& real, void* grad_real, FReal f_real, const Batch& fake, void* grad_fake,
                        FFake f_fake, Finish finish, Launch where) {
  const int64_t n = real.grid.numel() + fake.grid.numel();
  const Scratch scratch = scratch_for(where);
  with_flag(dense(real.grid, real.logits) && dense(fake.grid, fake.logits), [&](auto flat) {
    launch(two_batch_kernel<T, decltype(flat)::value, FReal, FFake, Finish>, blocks_for(n), where, real,
           static_cast<T*>(grad_real), f_real, fake, static_cast<T*>(grad_fake), f_fake, scratch, finish);
  });
}

template <class T, class Fa, class Fb, class... Operands>
void map_pair(Grid grid, void* out_a, Fa fa, void* out_b, Fb fb, Launch where, const Operands&... operands) {
  const int64_t n = grid.numel();
  if (n == 0) return;
  with_flatness(grid, [&](auto flat) {
    launch(map_pair_kernel<T, decltype(flat)::value, Fa, Fb, Operands...>, blocks_for(n), where, grid, static_cast<T*>(out_a), fa,
           static_cast<T*>(out_b), fb, operands...);
  }, operands...);
}

}  // namespace fusedgan::cuda

// Log-likelihoods on CUDA: a block per row (data set), its threads striding over the
// row's points and adding in a fixed tree, so each sum has the same bits on every run.
#include "../math/loglik.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

constexpr int kMaxRowBlocks = 4096;

template <class T>
__device__ __forceinline__ math::compute_t<T> param(const LogLikelihoodArgs& a, int k, int64_t row, int64_t col) {
  return load<T>(a.params[k], row, col);
}

template <class T, class F>
__global__ void __launch_bounds__(kThreads) log_likelihood_kernel(LogLikelihoodArgs a, T* out, F log_pdf) {
  for (int64_t row = blockIdx.x; row < a.grid.rows; row += gridDim.x) {
    double sum = 0;
    for (int64_t col = threadIdx.x; col < a.grid.cols; col += kThreads) {
      sum += double(log_pdf(load<T>(a.x, row, col), param<T>(a, 0, row, col), param<T>(a, 1, row, col),
                            param<T>(a, 2, row, col)));
    }
    sum = block_sum(sum);
    if (threadIdx.x == 0) math::narrow_into(out + row, math::compute_t<T>(sum));
  }
}

template <class T, class F>
__global__ void __launch_bounds__(kThreads)
    log_likelihood_backward_kernel(LogLikelihoodArgs a, const T* grad, LogLikelihoodGrads out, F log_pdf) {
  for (int64_t row = blockIdx.x; row < a.grid.rows; row += gridDim.x) {
    const auto g = math::widen(grad[row]);
    double sums[kMaxParams] = {};
    for (int64_t col = threadIdx.x; col < a.grid.cols; col += kThreads) {
      const int64_t i = row * a.grid.cols + col;
      const auto p = log_pdf.partials(load<T>(a.x, row, col), param<T>(a, 0, row, col), param<T>(a, 1, row, col),
                                      param<T>(a, 2, row, col));
      if (out.x) math::narrow_into(static_cast<T*>(out.x) + i, g * p.x);
      for (int k = 0; k < kMaxParams; ++k) {
        if (out.per_row[k]) {
          sums[k] += double(g * p.params[k]);
        } else if (out.params[k]) {
          math::narrow_into(static_cast<T*>(out.params[k]) + i, g * p.params[k]);
        }
      }
    }
    for (int k = 0; k < kMaxParams; ++k) {
      const double total = block_sum(sums[k]);
      if (threadIdx.x == 0 && out.per_row[k]) {
        math::narrow_into(static_cast<T*>(out.params[k]) + row, math::compute_t<T>(total));
      }
    }
  }
}

int row_blocks(int64_t rows) { return int(rows < kMaxRowBlocks ? rows : kMaxRowBlocks); }

}  // namespace

void log_likelihood(const LogLikelihoodArgs& a, void* out, Launch where) {
  if (a.grid.rows == 0) return;
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      launch(log_likelihood_kernel<T, decltype(log_pdf)>, row_blocks(a.grid.rows), where, a, static_cast<T*>(out),
             log_pdf);
    });
  });
}

void log_likelihood_backward(const LogLikelihoodArgs& a, const void* grad, const LogLikelihoodGrads& out,
                             Launch where) {
  if (a.grid.rows == 0) return;
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      launch(log_likelihood_backward_kernel<T, decltype(log_pdf)>, row_blocks(a.grid.rows), where, a,
             static_cast<const T*>(grad), out, log_pdf);
    });
  });
}

}  // namespace fusedgan::cuda

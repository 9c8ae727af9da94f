// Log-likelihoods on CUDA: a block per row (data set), its threads striding over the
// row's points and adding in a fixed tree, so each sum has the same bits on every run.
#include "../math/loglik.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

constexpr int kMaxRowBlocks = 4096;

template <class T, class F>
__global__ void __launch_bounds__(kThreads) log_likelihood_kernel(LogLikelihoodArgs a, T* out, F log_pdf) {
  for (int64_t row = blockIdx.x; row < a.grid.rows; row += gridDim.x) {
    double sum = 0;
    for (int64_t col = threadIdx.x; col < a.grid.cols; col += kThreads) {
      sum += double(log_pdf(load<T>(a.x, row, col), load<T>(a.a, row, col), load<T>(a.b, row, col)));
    }
    sum = block_sum(sum);
    if (threadIdx.x == 0) math::narrow_into(out + row, math::compute_t<T>(sum));
  }
}

template <class T, class F>
__global__ void __launch_bounds__(kThreads)
    log_likelihood_backward_kernel(LogLikelihoodArgs a, const T* grad, LogLikelihoodGrads out, F log_pdf) {
  T* grad_x = static_cast<T*>(out.x);
  T* grad_a = static_cast<T*>(out.a);
  T* grad_b = static_cast<T*>(out.b);
  for (int64_t row = blockIdx.x; row < a.grid.rows; row += gridDim.x) {
    const auto g = math::widen(grad[row]);
    double sum_a = 0, sum_b = 0;
    for (int64_t col = threadIdx.x; col < a.grid.cols; col += kThreads) {
      const int64_t i = row * a.grid.cols + col;
      const auto p = log_pdf.partials(load<T>(a.x, row, col), load<T>(a.a, row, col), load<T>(a.b, row, col));
      if (grad_x) math::narrow_into(grad_x + i, g * p.x);
      if (out.a_per_row) {
        sum_a += double(g * p.a);
      } else if (grad_a) {
        math::narrow_into(grad_a + i, g * p.a);
      }
      if (out.b_per_row) {
        sum_b += double(g * p.b);
      } else if (grad_b) {
        math::narrow_into(grad_b + i, g * p.b);
      }
    }
    sum_a = block_sum(sum_a);
    sum_b = block_sum(sum_b);
    if (threadIdx.x == 0 && out.a_per_row) math::narrow_into(grad_a + row, math::compute_t<T>(sum_a));
    if (threadIdx.x == 0 && out.b_per_row) math::narrow_into(grad_b + row, math::compute_t<T>(sum_b));
  }
}

int row_blocks(int64_t rows) { return int(rows < kMaxRowBlocks ? rows : kMaxRowBlocks); }

}  // namespace

void log_likelihood(const LogLikelihoodArgs& a, void* out, Launch launch) {
  if (a.grid.rows == 0) return;
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      log_likelihood_kernel<T><<<row_blocks(a.grid.rows), kThreads, 0, stream_of(launch)>>>(a, static_cast<T*>(out),
                                                                                          log_pdf);
    });
  });
  check(cudaGetLastError(), "kernel launch");
}

void log_likelihood_backward(const LogLikelihoodArgs& a, const void* grad, const LogLikelihoodGrads& out,
                             Launch launch) {
  if (a.grid.rows == 0) return;
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      log_likelihood_backward_kernel<T><<<row_blocks(a.grid.rows), kThreads, 0, stream_of(launch)>>>(
          a, static_cast<const T*>(grad), out, log_pdf);
    });
  });
  check(cudaGetLastError(), "kernel launch");
}

}  // namespace fusedgan::cuda

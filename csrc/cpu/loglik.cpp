// Log-likelihoods: per row (data set), the sum of log f over its points in one pass;
// backward: d/dx per element and the parameters' gradients per element or summed per row.
#include "../math/loglik.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

void log_likelihood(const LogLikelihoodArgs& a, void* out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      const auto totals = sum_rows<1>(a.grid, [&](int64_t row, int64_t first, int64_t last) {
        const int64_t begin = row * a.grid.cols;
        return std::array<double, 1>{reduce_chunk<T>(a.grid, begin + first, begin + last, nullptr, log_pdf, a.x, a.a, a.b).first};
      });
      for (int64_t row = 0; row < a.grid.rows; ++row) math::narrow_into(static_cast<T*>(out) + row, totals[row][0]);
    });
  });
}

void log_likelihood_backward(const LogLikelihoodArgs& a, const void* grad, const LogLikelihoodGrads& out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    using L = Lanes<T>;
    const Operand grad_per_row{grad, 1, true};
    T* grad_x = static_cast<T*>(out.x);
    T* grad_a = static_cast<T*>(out.a);
    T* grad_b = static_cast<T*>(out.b);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      const auto totals = sum_rows<2>(a.grid, [&](int64_t row, int64_t first, int64_t last) {
        typename L::Sum sum_a, sum_b;
        const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
          const auto [x, pa, pb, g] = std::apply(
              [&](const auto&... c) FUSEDGAN_LAMBDA_ALWAYS_INLINE { return std::array{c.at(offset, count)...}; }, cursors);
          const auto p = log_pdf.partials(x, pa, pb);
          if (grad_x) L::store(grad_x + index, g * p.x, count);
          if (out.a_per_row) {
            sum_a.add(g * p.a, count);
          } else if (grad_a) {
            L::store(grad_a + index, g * p.a, count);
          }
          if (out.b_per_row) {
            sum_b.add(g * p.b, count);
          } else if (grad_b) {
            L::store(grad_b + index, g * p.b, count);
          }
        };
        const int64_t begin = row * a.grid.cols;
        for_each_run<T>(a.grid, begin + first, begin + last, step, a.x, a.a, a.b, grad_per_row);
        return std::array<double, 2>{sum_a.total(), sum_b.total()};
      });
      for (int64_t row = 0; row < a.grid.rows; ++row) {
        if (out.a_per_row) math::narrow_into(grad_a + row, totals[row][0]);
        if (out.b_per_row) math::narrow_into(grad_b + row, totals[row][1]);
      }
    });
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

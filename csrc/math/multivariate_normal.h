// The log-likelihood of a multivariate normal with covariance L L^T, parameterised by its
// Cholesky factor L (lower triangular, positive diagonal; the upper triangle is never read),
// one data set at a time:
//   sum_i log N(x_i; mu, L L^T) = sum_i -|z_i|^2 / 2 + N (-sum_j log L_jj - D log(2 pi) / 2),
// with z_i = L^-1 (x_i - mu) by forward substitution: O(D^2) a point, no inverse, nothing of
// size N x D x D. With w_i = L^-T z_i (back substitution) and incoming gradient g:
//   d/dx_i = -g w_i,   d/dmu = g L^-T sum_i z_i,   d/dL = g (tril(L^-T S) - N diag(1/L_jj)),
// S = sum_i z_i z_i^T: as dz = -L^-1 dL z, d(-|z|^2 / 2) = z^T L^-1 dL z = <L^-T z z^T, dL>.
// The per-point functions are templates over V: a double (one point, on CUDA) or one of the
// CPU's vectors (one point per lane: float, or double for float64).
#pragma once

#include "../kernel_args.h"
#include "scalar.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// One data set: x in the data's type T, the parameters in S (double, or float for the CPU's
// float vectors).
template <class T, class S = double>
struct MultivariateNormalSet {
  const T* x;             // (N, D)
  const S* loc;           // (D)
  const S* scale_tril;    // (D, D), row-major
  const S* inv_diagonal;  // (D): 1/L_jj
  int64_t n, d;

  // z = L^-1 (x - mu) into z[0..D) for a point whose coordinate c is x(c); returns -|z|^2 / 2,
  // the point's term of the log-likelihood.
  template <class V, class Point>
  FUSEDGAN_HOST_DEVICE V whiten(const Point& x, V* z) const {
    V squares(0.0f);
    for (int64_t j = 0; j < d; ++j) {
      V r = x(j) - V(loc[j]);
      for (int64_t k = 0; k < j; ++k) r = r - V(scale_tril[j * d + k]) * z[k];
      z[j] = r * V(inv_diagonal[j]);
      squares = squares + z[j] * z[j];
    }
    return V(-0.5f) * squares;
  }

  // y = L^-T y in place (back substitution) for the vector y[0], y[stride], ..., rows
  // [first, D) only: those depend on no row above them.
  template <class V>
  FUSEDGAN_HOST_DEVICE void solve_transposed(V* y, int64_t stride = 1, int64_t first = 0) const {
    for (int64_t j = d - 1; j >= first; --j) {
      V r = y[j * stride];
      for (int64_t k = j + 1; k < d; ++k) r = r - V(scale_tril[k * d + j]) * y[k * stride];
      y[j * stride] = r * V(inv_diagonal[j]);
    }
  }
};

// One data set of a MultivariateNormalArgs.
template <class T>
FUSEDGAN_HOST_DEVICE MultivariateNormalSet<T> multivariate_normal_set(const MultivariateNormalArgs& a, int64_t set) {
  return {static_cast<const T*>(a.x) + set * a.n * a.d, a.loc + set * a.d, a.scale_tril + set * a.d * a.d,
          a.inv_diagonal + set * a.d, a.n, a.d};
}

// A set's parameter gradients times g from its sums, in place (either may be null): grad_loc
// holds sum_i z_i and becomes g L^-T sum_i z_i; grad_scale_tril holds S = sum_i z_i z_i^T in its
// lower triangle and becomes g (tril(L^-T S) - N diag(1/L_jj)), its upper triangle set to 0.
template <class T>
FUSEDGAN_HOST_DEVICE void finish_parameter_gradients(const MultivariateNormalSet<T>& s, double g, double* grad_loc,
                                                     double* grad_scale_tril) {
  const int64_t d = s.d;
  if (grad_loc) {
    s.solve_transposed(grad_loc);
    for (int64_t j = 0; j < d; ++j) grad_loc[j] *= g;
  }
  if (!grad_scale_tril) return;
  // Column c of tril(L^-T S): its rows j >= c need only S_kc for k >= c, the stored triangle.
  for (int64_t c = 0; c < d; ++c) s.solve_transposed(grad_scale_tril + c, d, c);
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t c = 0; c < d; ++c) {
      double& entry = grad_scale_tril[j * d + c];
      entry = c > j ? 0.0 : g * (c == j ? entry - double(s.n) * s.inv_diagonal[j] : entry);
    }
  }
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

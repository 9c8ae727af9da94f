// Log-densities of i.i.d. data, log f(x; theta), per element, and their partial derivatives
// with respect to x and to each parameter (the source notes, section 1: the log-likelihood of
// a data set is the sum of these over its points).
//   normal(loc m, scale s):        -z^2/2 - log s - log(2 pi)/2, z = (x - m)/s
//                                  d/dx = -z/s, d/dm = z/s, d/ds = (z^2 - 1)/s
//   laplace(loc m, scale b):       -|x - m|/b - log(2b)
//                                  d/dx = -sign(x - m)/b, d/dm = sign(x - m)/b, d/db = (|x - m| - b)/b^2
//   exponential(rate r):           log r - r x for x >= 0, -inf below
//                                  d/dx = -r, d/dr = 1/r - x (0 outside the support)
//   bernoulli(logits l):           x l - softplus(l) = -bce_with_logits(l, x)
//                                  d/dx = l, d/dl = x - sigmoid(l)
//   poisson(rate r):               k log r - r - lgamma(k + 1)  (0 log 0 = 0)
//                                  d/dk = log r - psi(k + 1), d/dr = k/r - 1
//   student_t(df n, loc m, scale s): lgamma((n+1)/2) - lgamma(n/2) - log(n pi)/2 - log s
//                                  - (n+1)/2 log(1 + z^2/n), z = (x - m)/s; with w = (n+1)/(n + z^2):
//                                  d/dx = -w z/s, d/dm = w z/s, d/ds = (w z^2 - 1)/s,
//                                  d/dn = (psi((n+1)/2) - psi(n/2) - 1/n - log(1 + z^2/n) + w z^2/n) / 2
// Each functor takes (x, a, b, c) with the family's parameters in order; unused ones read as 1.
#pragma once

#include "../kernel_api.h"
#include "bce.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

inline constexpr double kLogPi = 1.14472988584940017414;

// The partial derivatives of one element's log-density: by x, and by each parameter.
template <class V>
struct Partials {
  V x;
  V params[kMaxParams];
};

// Split like StudentTLogPdf below: log s once per data set where s is constant along it.
struct NormalLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V, V scale, V) {
    return -log(scale) - V(kHalfLog2Pi);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V loc, V scale, V) {
    const V z = (x - loc) / scale;
    return V(-0.5) * z * z;
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V loc, V scale, V unused) const {
    return normalizer(loc, scale, unused) + data_term(x, loc, scale, unused);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V loc, V scale, V) const {
    const V inv_s = V(1) / scale;  // one division rather than three
    const V z = (x - loc) * inv_s;
    const V z_over_s = z * inv_s;
    return {-z_over_s, {z_over_s, (z * z - V(1)) * inv_s, V(0)}};
  }
};

struct LaplaceLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V loc, V scale, V) const {
    return -abs(x - loc) / scale - log(V(2) * scale);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V loc, V scale, V) const {
    const V d = x - loc;
    const V sign = select(d > V(0), V(1), select(d < V(0), V(-1), V(0)));
    return {-sign / scale, {sign / scale, (abs(d) - scale) / (scale * scale), V(0)}};
  }
};

struct ExponentialLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V rate, V, V) const {
    return select(x < V(0), V(-__builtin_inff()), log(rate) - rate * x);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V rate, V, V) const {
    const auto outside = x < V(0);
    return {select(outside, V(0), -rate), {select(outside, V(0), V(1) / rate - x), V(0), V(0)}};
  }
};

struct BernoulliLogPmf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V logits, V, V) const {
    return -bce_with_logits(logits, x, V(1), V(1));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V logits, V, V) const {
    return {logits, {x - sigmoid(logits), V(0), V(0)}};
  }
};

struct PoissonLogPmf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V k, V rate, V, V) const {
    return weighted(k, log(rate)) - rate - lgamma(k + V(1));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V k, V rate, V, V) const {
    return {log(rate) - digamma(k + V(1)), {k / rate - V(1), V(0), V(0)}};
  }
};

// Split in two: the terms of the parameters alone (with its two lgammas, most of the cost)
// and the data's term, so that a data set whose parameters are constant along it takes the
// first once (cpu/loglik.cpp; the normal above likewise).
struct StudentTLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V df, V, V scale) {
    const V half_df = V(0.5) * df;
    return lgamma(half_df + V(0.5)) - lgamma(half_df) - V(0.5) * (log(df) + V(kLogPi)) - log(scale);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V df, V loc, V scale) {
    const V z = (x - loc) / scale;
    return -(V(0.5) * df + V(0.5)) * log1p(z * z / df);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V df, V loc, V scale) const {
    return normalizer(df, loc, scale) + data_term(x, df, loc, scale);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V df, V loc, V scale) const {
    const V z = (x - loc) / scale;
    const V z2 = z * z;
    const V w = (df + V(1)) / (df + z2);
    const V half_df = V(0.5) * df;
    const V d_df = V(0.5) * (digamma(half_df + V(0.5)) - digamma(half_df) - V(1) / df - log1p(z2 / df) + w * z2 / df);
    return {-w * z / scale, {d_df, w * z / scale, (w * z2 - V(1)) / scale}};
  }
};

// Calls run(log_pdf) with the functor of `family`.
template <class Run>
void with_log_pdf(Family family, const Run& run) {
  switch (family) {
    case Family::Normal:
      return run(NormalLogPdf{});
    case Family::Laplace:
      return run(LaplaceLogPdf{});
    case Family::Exponential:
      return run(ExponentialLogPdf{});
    case Family::Bernoulli:
      return run(BernoulliLogPmf{});
    case Family::Poisson:
      return run(PoissonLogPmf{});
    case Family::StudentT:
      return run(StudentTLogPdf{});
  }
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

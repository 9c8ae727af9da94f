// Log-densities of i.i.d. data, log f(x; theta), per element, and their partial derivatives
// with respect to x and to each parameter (the source notes, section 1: the log-likelihood of
// a data set is the sum of these over its points).
//   normal(loc m, scale s):       -z^2/2 - log s - log(2 pi)/2, z = (x - m)/s
//                                 d/dx = -z/s, d/dm = z/s, d/ds = (z^2 - 1)/s
//   laplace(loc m, scale b):      -|x - m|/b - log(2b)
//                                 d/dx = -sign(x - m)/b, d/dm = sign(x - m)/b, d/db = (|x - m| - b)/b^2
//   exponential(rate r):          log r - r x for x >= 0, -inf below
//                                 d/dx = -r, d/dr = 1/r - x (0 outside the support)
//   bernoulli(logits l):          x l - softplus(l) = -bce_with_logits(l, x)
//                                 d/dx = l, d/dl = x - sigmoid(l)
// Each functor takes (x, a, b) with the family's parameters in order; unused ones read as 1.
#pragma once

#include "../kernel_api.h"
#include "bce.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

inline constexpr double kHalfLog2Pi = 0.91893853320467274178;
inline constexpr double kLog2 = 0.69314718055994530942;

// The partial derivatives of one element's log-density.
template <class V>
struct Partials {
  V x, a, b;
};

struct NormalLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V loc, V scale) const {
    const V z = (x - loc) / scale;
    return V(-0.5) * z * z - log(scale) - V(kHalfLog2Pi);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V loc, V scale) const {
    const V z_over_s = (x - loc) / (scale * scale);
    const V z = (x - loc) / scale;
    return {-z_over_s, z_over_s, (z * z - V(1)) / scale};
  }
};

struct LaplaceLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V loc, V scale) const {
    return -abs(x - loc) / scale - log(V(2) * scale);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V loc, V scale) const {
    const V d = x - loc;
    const V sign = select(d > V(0), V(1), select(d < V(0), V(-1), V(0)));
    return {-sign / scale, sign / scale, (abs(d) - scale) / (scale * scale)};
  }
};

struct ExponentialLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V rate, V) const {
    return select(x < V(0), V(-__builtin_inff()), log(rate) - rate * x);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V rate, V) const {
    const auto outside = x < V(0);
    return {select(outside, V(0), -rate), select(outside, V(0), V(1) / rate - x), V(0)};
  }
};

struct BernoulliLogPmf {
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V logits, V) const {
    return -bce_with_logits(logits, x, V(1), V(1));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V logits, V) const {
    return {logits, x - sigmoid(logits), V(0)};
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
  }
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

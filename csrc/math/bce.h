// Binary cross-entropy, per element, and its derivatives.
//   logits form:      l = w * [pw * y * softplus(-x) + (1 - y) * softplus(x)]
//                       = -w * [pw * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))]
//   probability form: l = -w * [y * max(log p, -100) + (1 - y) * max(log(1 - p), -100)]
// (the source notes drop the log of the second term; this is the corrected form, with
// torch's clamp of each log at -100 so that p in {0, 1} stays finite).
#pragma once

#include "logistic.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// With softplus(+-x) = max(+-x, 0) + m, m = log(1 + e^-|x|), the loss regroups as
// w * [(1 + (pw - 1) y) m + c |x|], c = (1 - y) for x > 0 and pw y otherwise: one log term
// and one guarded product, the same value as the two softplus terms.
// The _given forms take e = e^-|x| from the caller, which computes it once for both.
template <class V>
FUSEDGAN_HOST_DEVICE V bce_with_logits_given(V x, V e, V y, V w, V pw) {
  const V c = select(x > V(0), V(1) - y, pw * y);
  return w * ((V(1) + (pw - V(1)) * y) * log1p_unit(e) + weighted(c, abs(x)));
}

// dl/dx = w * (a sigmoid(x) - pw y) with a = 1 + (pw - 1) y, for x > 0 written as
// w * ((1 - y) - a sigmoid(-x)): there sigmoid(x) rounds to 1 (x > 17 in float), and y = 1
// would cancel it to 0. Finite at x = +-inf.
template <class V>
FUSEDGAN_HOST_DEVICE V bce_with_logits_grad_input_given(V x, V e, V y, V w, V pw) {
  const V a = V(1) + (pw - V(1)) * y;
  return w * select(x > V(0), (V(1) - y) - a * sigmoid_given(-x, e), a * sigmoid_given(x, e) - pw * y);
}

template <class V>
FUSEDGAN_HOST_DEVICE V bce_with_logits(V x, V y, V w, V pw) {
  return bce_with_logits_given(x, exp_minus(abs(x)), y, w, pw);
}

template <class V>
FUSEDGAN_HOST_DEVICE V bce_with_logits_grad_input(V x, V y, V w, V pw) {
  return bce_with_logits_grad_input_given(x, exp_minus(abs(x)), y, w, pw);
}

// dl/dy = w * (pw * softplus(-x) - softplus(x)), which is -w * x when pw = 1.
template <class V>
FUSEDGAN_HOST_DEVICE V bce_with_logits_grad_target(V x, V w, V pw) {
  const SoftplusPair<V> sp = softplus_pair(x);
  return w * (pw * sp.of_minus_x - sp.of_x);
}

template <class V>
FUSEDGAN_HOST_DEVICE V at_least_minus_100(V log_value) {
  return select(log_value < V(-100), V(-100), log_value);
}

// The probability form is defined for p in [0, 1]; NaN is outside too, as in torch.
template <class V>
FUSEDGAN_HOST_DEVICE auto is_probability(V p) {
  return (p >= V(0)) & (p <= V(1));
}

template <class V>
FUSEDGAN_HOST_DEVICE V bce(V p, V y, V w) {
  return -w * (y * at_least_minus_100(log(p)) + (V(1) - y) * at_least_minus_100(log1p(-p)));
}

// dl/dp = w * (p - y) / max(p * (1 - p), 1e-12), torch's guard against p in {0, 1}.
template <class V>
FUSEDGAN_HOST_DEVICE V bce_grad_input(V p, V y, V w) {
  const V denominator = p * (V(1) - p);
  return w * (p - y) / select(denominator < V(1e-12), V(1e-12), denominator);
}

// dl/dy = w * (log(1 - p) - log p) = -w * logit(p), unclamped as in torch.
template <class V>
FUSEDGAN_HOST_DEVICE V bce_grad_target(V p, V w) {
  return w * (log1p(-p) - log(p));
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

// Entropy, H(q) = -sum_i q_i log q_i with 0 log 0 = 0 (the source notes, section 2), in three
// forms. Values and gradients are multiplied by `scale` = 1 / log(base) (1 for nats).
//   probabilities, over a row:  H = sum entr(q_i), entr(q) = -q log q;  dH/dq_i = -(log q_i + 1)
//   softmax of logits z:        with m = max z, s = sum e^(z-m), t = sum e^(z-m) (z-m):
//                               H = log s - t / s;  dH/dz_j = -p_j ((z_j - m) - t / s), p_j = e^(z_j-m) / s
//                               (a logit of -inf has p = 0 and adds nothing, so H stays finite)
//   binary, of sigmoid(x):      H = log(1 + e) + |x| e / (1 + e) with e = e^-|x|, the same as
//                               -p log p - (1-p) log(1-p) without its cancellation at large |x|;
//                               dH/dx = -x sigmoid(x) sigmoid(-x)
// These are the element terms of the row forms: the CPU runs a row in vectors, CUDA spreads it
// over a group of threads.
#pragma once

#include "logistic.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

template <class V>
FUSEDGAN_HOST_DEVICE V entr(V q) {
  return select(q == V(0), V(0), -q * log(q));  // log of a negative q is NaN
}

template <class V>
FUSEDGAN_HOST_DEVICE V entr_grad(V q) {
  return -(log(q) + V(1));
}

// log s as log1p(s - 1), where s - 1 is the sum of the terms below the row's max unless the
// max is tied: log(s) of a row whose other terms are below the epsilon would be 0.
template <class V>
FUSEDGAN_HOST_DEVICE V log_of_softmax_sum(V s, V below_max) {
  return log1p(select(s - below_max > V(1.5), s - V(1), below_max));
}

// The row statistics of the softmax form: max, s, t and the sum of the terms below the max.
struct SoftmaxRow {
  double max, s, t, below_max;
  FUSEDGAN_HOST_DEVICE double entropy() const { return log_of_softmax_sum(s, below_max) - t / s; }
};

// The larger of a running maximum and a logit; NaN wins, and propagates.
template <class V>
FUSEDGAN_HOST_DEVICE V softmax_max(V m, V z) {
  return select(is_nan(z), z, select(z > m, z, m));
}

// A logit's terms of s, t and s's part below the max, given the row's max.
template <class V>
struct SoftmaxTerms {
  V e, t, below_max;
};
template <class V>
FUSEDGAN_HOST_DEVICE SoftmaxTerms<V> softmax_terms(V z, V max) {
  const V shifted = z - max;
  const V e = exp(shifted);
  return {e, weighted(e, shifted), select(z == max, V(0), e)};
}

// dH/dz_j = -p_j (log p_j + H), given p_j and log p_j + H = (z_j - m) - t / s; 0 where p_j = 0.
template <class V>
FUSEDGAN_HOST_DEVICE V entropy_with_logits_grad(V p, V log_p_plus_entropy) {
  return -weighted(p, log_p_plus_entropy);
}

// dH/dz of a logit of a row with max m, 1/s and t/s.
template <class V>
FUSEDGAN_HOST_DEVICE V entropy_with_logits_grad(V z, V max, V inv_s, V t_over_s) {
  const V shifted = z - max;
  return entropy_with_logits_grad(exp(shifted) * inv_s, shifted - t_over_s);
}

// dH/dz of a logit of a row with statistics `row`.
template <class V>
FUSEDGAN_HOST_DEVICE V entropy_with_logits_grad(V z, const SoftmaxRow& row) {
  return entropy_with_logits_grad(z, V(row.max), V(1 / row.s), V(row.t / row.s));
}

// ---- binary entropy, elementwise

template <class V>
FUSEDGAN_HOST_DEVICE V binary_entropy_with_logits(V x) {
  const V e = exp_minus(abs(x));
  return log1p_unit(e) + weighted(e / (V(1) + e), abs(x));
}

// sigmoid(x) sigmoid(-x) = e / (1 + e)^2 with e = e^-|x|; it is 0 at x = +-inf, where the
// product with x is taken as 0.
template <class V>
FUSEDGAN_HOST_DEVICE V binary_entropy_with_logits_grad(V x) {
  const V e = exp_minus(abs(x));
  const V r = V(1) / (V(1) + e);
  return -weighted(e * r * r, x);
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

// The logistic function and its logs, stable for every finite and infinite logit.
// Templates over V: a scalar (float, double), the CPU's SIMD vector, or a tensor expression
// (csrc/torch/tensor_math.h).
#pragma once

#include "scalar.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// max(x, 0) that lets NaN through.
template <class V>
FUSEDGAN_HOST_DEVICE V positive_part(V x) {
  return select(x < V(0), V(0), x);
}

// coefficient * term, with 0 * inf = 0: a term whose coefficient is exactly zero does
// not contribute, which gives the limits at infinite logits instead of NaN.
template <class V>
FUSEDGAN_HOST_DEVICE V weighted(V coefficient, V term) {
  return select(coefficient == V(0), V(0), coefficient * term);
}

// sigmoid(x) = 1 / (1 + e^-x) through e = exp(-|x|) <= 1, so nothing overflows.
// The _given form takes e from a caller that needs it for a log term as well.
template <class V>
FUSEDGAN_HOST_DEVICE V sigmoid_given(V x, V e) {
  const V r = V(1) / (V(1) + e);
  return select(x < V(0), e * r, r);
}

template <class V>
FUSEDGAN_HOST_DEVICE V sigmoid(V x) {
  return sigmoid_given(x, exp_minus(abs(x)));
}

// softplus(x) = log(1 + e^x) = -log(1 - sigmoid(x)), and softplus(-x) = -log sigmoid(x),
// sharing one exp and one log1p.
template <class V>
struct SoftplusPair {
  V of_x;
  V of_minus_x;
};

template <class V>
FUSEDGAN_HOST_DEVICE SoftplusPair<V> softplus_pair(V x) {
  const V log1p_exp_minus_abs = log1p_unit(exp_minus(abs(x)));
  return {positive_part(x) + log1p_exp_minus_abs, positive_part(-x) + log1p_exp_minus_abs};
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

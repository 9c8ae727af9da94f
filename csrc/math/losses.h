// The elementwise losses that kernels.def names, and the per-element functions the CPU and
// CUDA loops make of any such formula F. A formula provides kOperands (its operands, the
// optional weights last), kWeights (how many of those may be absent, reading as 1),
// kGradients (1: by the first operand; 2: also by the second), kScaled (whether values and
// gradients take the op's unit), and the static templates loss, loss_and_grad, grad_input
// (and grad_target), optionally in_domain of the first operand.
#pragma once

#include "bce.h"
#include "entropy.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// What F's values and gradients are multiplied by: the op's unit, where F takes one.
template <class F>
FUSEDGAN_HOST_DEVICE double unit_of(double op_unit) {
  return F::kScaled ? op_unit : 1.0;
}

// The loss per element.
template <class F>
struct Loss {
  double unit;
  template <class V, class... Rest>
  FUSEDGAN_HOST_DEVICE V operator()(V first, Rest... rest) const {
    if constexpr (F::kScaled) {
      return V(unit) * F::loss(first, rest...);
    } else {
      return F::loss(first, rest...);
    }
  }
  // Only where F has a domain (C++17, which the CUDA build uses, has no requires-clause).
  template <class V, class G = F>
  FUSEDGAN_HOST_DEVICE auto in_domain(V first) const -> decltype(G::in_domain(first)) {
    return G::in_domain(first);
  }
};

// The loss and grad_scale times its input gradient, from one evaluation.
template <class F>
struct LossAndGrad : Loss<F> {
  double grad_scale;
  template <class V, class... Rest>
  FUSEDGAN_HOST_DEVICE ValueAndGrad<V> operator()(V first, Rest... rest) const {
    const ValueAndGrad<V> result = F::loss_and_grad(first, rest...);
    return {F::kScaled ? V(this->unit) * result.value : result.value, V(grad_scale) * result.grad};
  }
};

// g * scale * the derivative by operand kWhich (0 or 1), from (g, operands...).
template <class F, int kWhich>
struct Derivative {
  double scale;
  template <class V, class... Operands>
  FUSEDGAN_HOST_DEVICE V operator()(V g, Operands... operands) const {
    if constexpr (kWhich == 0) {
      return g * V(scale) * F::grad_input(operands...);
    } else {
      return g * V(scale) * F::grad_target(operands...);
    }
  }
};

// The derivative by the second operand, for the backward's second output; a formula with one
// gradient has no second output (its slot stays null and is never written).
template <class F>
using SecondDerivative = Derivative<F, F::kGradients == 2 ? 1 : 0>;

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

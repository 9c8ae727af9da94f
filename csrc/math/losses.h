// The elementwise losses that kernels.def names, and the per-element functions the CPU and
// CUDA loops make of any of them. A loss's formula is a struct with
//   kOperands    how many operands it takes, the optional weights last
//   kWeights     how many of those may be absent (they then read as 1)
//   kGradients   1: it is differentiable by its first operand; 2: by its first two
//   kScaled      whether the op's unit (such as 1 / log(base)) multiplies values and gradients
//   loss(operands...), grad_input(operands...) and, with kGradients 2, grad_target(operands...):
//                static templates over the value type (a scalar, the CPU's vector, a tensor)
//   loss_and_grad(operands...)  optional: the loss and its d/d(first operand) from one
//                evaluation, for an op with an _and_grad op (a reduced loss's forward pass)
//   in_domain(first operand)    optional: where the first operand is valid (the CPU checks it)
#pragma once

#include <type_traits>
#include <utility>

#include "bce.h"
#include "entropy.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// ---- binary cross-entropy (bce.h), both forms

struct BceWithLogits {
  static constexpr int kOperands = 4;  // logits x, target y, weight w, pos_weight pw
  static constexpr int kWeights = 2;
  static constexpr int kGradients = 2;  // by x and by y
  static constexpr bool kScaled = false;
  template <class V>
  FUSEDGAN_HOST_DEVICE static V loss(V x, V y, V w, V pw) {
    return bce_with_logits(x, y, w, pw);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ValueAndGrad<V> loss_and_grad(V x, V y, V w, V pw) {
    const V e = exp_minus(abs(x));
    return {bce_with_logits_given(x, e, y, w, pw), bce_with_logits_grad_input_given(x, e, y, w, pw)};
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V grad_input(V x, V y, V w, V pw) {
    return bce_with_logits_grad_input(x, y, w, pw);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V grad_target(V x, V, V w, V pw) {
    return bce_with_logits_grad_target(x, w, pw);
  }
};

struct Bce {
  static constexpr int kOperands = 3;  // probability p, target y, weight w
  static constexpr int kWeights = 1;
  static constexpr int kGradients = 2;
  static constexpr bool kScaled = false;
  template <class V>
  FUSEDGAN_HOST_DEVICE static auto in_domain(V p) {
    return is_probability(p);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V loss(V p, V y, V w) {
    return bce(p, y, w);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ValueAndGrad<V> loss_and_grad(V p, V y, V w) {
    return {bce(p, y, w), bce_grad_input(p, y, w)};
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V grad_input(V p, V y, V w) {
    return bce_grad_input(p, y, w);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V grad_target(V p, V, V w) {
    return bce_grad_target(p, w);
  }
};

// ---- the binary entropy of sigmoids (entropy.h), in units of the op's base
struct BinaryEntropyWithLogits {
  static constexpr int kOperands = 1;
  static constexpr int kWeights = 0;
  static constexpr int kGradients = 1;
  static constexpr bool kScaled = true;
  template <class V>
  FUSEDGAN_HOST_DEVICE static V loss(V x) {
    return binary_entropy_with_logits(x);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V grad_input(V x) {
    return binary_entropy_with_logits_grad(x);
  }
};

// ---- what the loops make of a formula

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

// Whether F gives the loss with its input gradient from one evaluation.
template <class F, class = void>
inline constexpr bool kHasLossAndGrad = false;
template <class F>
inline constexpr bool kHasLossAndGrad<F, std::void_t<decltype(&F::template loss_and_grad<double>)>> = true;

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

// Binary cross-entropy, both forms: forward (elementwise, sum or mean, optionally with the
// input gradient) in one pass over the inputs, backward (input and/or target gradient) in
// one pass.
#include "../math/bce.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {

// f with its last kOnes arguments (the weights) fixed at one.
template <int kOnes, class F>
struct UnitWeights {
  F f;
  template <class V, class... Rest>
  FUSEDGAN_ALWAYS_INLINE auto operator()(V first, Rest... rest) const {
    if constexpr (kOnes == 2) {
      return f(first, rest..., V(1.0f), V(1.0f));
    } else {
      return f(first, rest..., V(1.0f));
    }
  }
  template <class V>
  FUSEDGAN_ALWAYS_INLINE auto in_domain(V p) const
    requires requires { f.in_domain(p); }
  {
    return f.in_domain(p);
  }
};

// run(wrap, weights...): the weights as operands, with wrap(f) = f; or, when every weight is
// absent (the usual call), no weight operands and wrap(f) = f with ones for them, known at
// compile time: the loop then neither loads nor tests them, and the multiplications by one
// fold away (about 8 % of the pass with the input gradient).
template <class Run, class... Weights>
auto with_weights(const Run& run, const Weights&... weights) {
  if ((!weights.data && ...)) {
    return run([](const auto& f) { return UnitWeights<sizeof...(Weights), std::decay_t<decltype(f)>>{f}; });
  }
  return run([](const auto& f) { return f; }, weights...);
}

}  // namespace

void bce_with_logits_forward(const BceArgs& a, Reduction reduction, void* out, void* grad_input) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    with_weights(
        [&](auto wrap, const auto&... weights) {
          if (grad_input) {
            reduce<T>(a.grid, reduction, out, grad_input,
                      wrap(math::BceWithLogitsLossAndGradInput{reduction_scale(a.grid, reduction)}), a.input,
                      a.target, weights...);
          } else {
            map_reduce<T>(a.grid, reduction, out, wrap(math::BceWithLogitsLoss{}), a.input, a.target, weights...);
          }
        },
        a.weight, a.pos_weight);
  });
}

void bce_with_logits_backward(const BceBackwardArgs& a) {
  const BceArgs& f = a.forward;
  math::visit_dtype(f.dtype, [&](auto zero) {
    with_weights(
        [&](auto wrap, const auto&... weights) {
          map_pair<decltype(zero)>(f.grid, a.grad_input, wrap(math::BceWithLogitsGradInput{a.scale}), a.grad_target,
                                   wrap(math::BceWithLogitsGradTarget{a.scale}), a.grad, f.input, f.target,
                                   weights...);
        },
        f.weight, f.pos_weight);
  });
}

bool bce_forward(const BceArgs& a, Reduction reduction, void* out, void* grad_input) {
  return math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    return with_weights(
        [&](auto wrap, const auto&... weights) {
          if (grad_input) {
            return reduce<T>(a.grid, reduction, out, grad_input,
                             wrap(math::BceLossAndGradInput{reduction_scale(a.grid, reduction)}), a.input, a.target,
                             weights...);
          }
          return map_reduce<T>(a.grid, reduction, out, wrap(math::BceLoss{}), a.input, a.target, weights...);
        },
        a.weight);
  });
}

void bce_backward(const BceBackwardArgs& a) {
  const BceArgs& f = a.forward;
  math::visit_dtype(f.dtype, [&](auto zero) {
    with_weights(
        [&](auto wrap, const auto&... weights) {
          map_pair<decltype(zero)>(f.grid, a.grad_input, wrap(math::BceGradInput{a.scale}), a.grad_target,
                                   wrap(math::BceGradTarget{a.scale}), a.grad, f.input, f.target, weights...);
        },
        f.weight);
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

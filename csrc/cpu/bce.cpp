// Binary cross-entropy, both forms: forward (elementwise, sum or mean, optionally with the
// input gradient) in one pass over the inputs, backward (input and/or target gradient) in
// one pass.
#include "../math/bce.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

void bce_with_logits_forward(const BceArgs& a, Reduction reduction, void* out, void* grad_input) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (grad_input) {
      reduce<T>(a.grid, reduction, out, grad_input, math::BceWithLogitsLossAndGradInput{reduction_scale(a.grid, reduction)},
                a.input, a.target, a.weight, a.pos_weight);
    } else {
      map_reduce<T>(a.grid, reduction, out, math::BceWithLogitsLoss{}, a.input, a.target, a.weight, a.pos_weight);
    }
  });
}

void bce_with_logits_backward(const BceBackwardArgs& a) {
  const BceArgs& f = a.forward;
  math::visit_dtype(f.dtype, [&](auto zero) {
    map_pair<decltype(zero)>(f.grid, a.grad_input, math::BceWithLogitsGradInput{a.scale}, a.grad_target,
                             math::BceWithLogitsGradTarget{a.scale}, a.grad, f.input, f.target, f.weight,
                             f.pos_weight);
  });
}

bool bce_forward(const BceArgs& a, Reduction reduction, void* out, void* grad_input) {
  return math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (grad_input) {
      return reduce<T>(a.grid, reduction, out, grad_input, math::BceLossAndGradInput{reduction_scale(a.grid, reduction)},
                       a.input, a.target, a.weight);
    }
    return map_reduce<T>(a.grid, reduction, out, math::BceLoss{}, a.input, a.target, a.weight);
  });
}

void bce_backward(const BceBackwardArgs& a) {
  const BceArgs& f = a.forward;
  math::visit_dtype(f.dtype, [&](auto zero) {
    map_pair<decltype(zero)>(f.grid, a.grad_input, math::BceGradInput{a.scale}, a.grad_target,
                             math::BceGradTarget{a.scale}, a.grad, f.input, f.target, f.weight);
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// Binary cross-entropy, both forms, on CUDA: one launch forward (optionally with the input
// gradient), one backward.
#include "../math/bce.h"
#include "loops.cuh"

namespace fusedgan::cuda {

void bce_with_logits_forward(const BceArgs& a, Reduction reduction, void* out, void* grad_input, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (grad_input) {
      reduce<T>(a.grid, reduction, out, grad_input, launch,
                    math::BceWithLogitsLossAndGradInput{reduction_scale(a.grid, reduction)}, a.input, a.target,
                    a.weight, a.pos_weight);
    } else {
      map_reduce<T>(a.grid, reduction, out, launch, math::BceWithLogitsLoss{}, a.input, a.target, a.weight,
                    a.pos_weight);
    }
  });
}

void bce_with_logits_backward(const BceBackwardArgs& a, Launch launch) {
  const BceArgs& f = a.forward;
  math::visit_dtype(f.dtype, [&](auto zero) {
    map_pair<decltype(zero)>(f.grid, a.grad_input, math::BceWithLogitsGradInput{a.scale}, a.grad_target,
                             math::BceWithLogitsGradTarget{a.scale}, launch, a.grad, f.input, f.target, f.weight,
                             f.pos_weight);
  });
}

void bce_forward(const BceArgs& a, Reduction reduction, void* out, void* grad_input, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (grad_input) {
      reduce<T>(a.grid, reduction, out, grad_input, launch,
                    math::BceLossAndGradInput{reduction_scale(a.grid, reduction)}, a.input, a.target, a.weight);
    } else {
      map_reduce<T>(a.grid, reduction, out, launch, math::BceLoss{}, a.input, a.target, a.weight);
    }
  });
}

void bce_backward(const BceBackwardArgs& a, Launch launch) {
  const BceArgs& f = a.forward;
  math::visit_dtype(f.dtype, [&](auto zero) {
    map_pair<decltype(zero)>(f.grid, a.grad_input, math::BceGradInput{a.scale}, a.grad_target,
                             math::BceGradTarget{a.scale}, launch, a.grad, f.input, f.target, f.weight);
  });
}

}  // namespace fusedgan::cuda

// The elementwise losses of kernels.def on CUDA, each run with its formula of csrc/math: one
// launch forward (optionally with the input gradient), one backward. Domains are not checked
// (that would cost a host synchronisation): an input outside one gives NaN.
#include <utility>

#include "../math/losses.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

// fn(operands[0], ..., operands[F::kOperands - 1]); absent weights read as 1.
template <class F, class Fn, size_t... I>
decltype(auto) apply_operands(const Operand* operands, const Fn& fn, std::index_sequence<I...>) {
  return fn(operands[I]...);
}
template <class F, class Fn>
decltype(auto) with_operands(const Operand* operands, const Fn& fn) {
  return apply_operands<F>(operands, fn, std::make_index_sequence<F::kOperands>{});
}

}  // namespace

template <class F>
bool elementwise_forward(const ElementwiseArgs& a, Reduction reduction, void* out, void* grad_input, Launch launch) {
  const double unit = math::unit_of<F>(a.scale);
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    with_operands<F>(a.operands, [&](const auto&... operands) {
      if constexpr (math::kHasLossAndGrad<F>) {
        if (grad_input) {
          const math::LossAndGrad<F> f{{unit}, unit * reduction_scale(a.grid, reduction)};
          return reduce<T>(a.grid, reduction, out, grad_input, launch, f, operands...);
        }
      }
      map_reduce<T>(a.grid, reduction, out, launch, math::Loss<F>{unit}, operands...);
    });
  });
  return true;
}

template <class F>
void elementwise_backward(const ElementwiseBackwardArgs& a, Launch launch) {
  const ElementwiseArgs& f = a.forward;
  const double scale = a.grad_scale * math::unit_of<F>(f.scale);
  math::visit_dtype(f.dtype, [&](auto zero) {
    with_operands<F>(f.operands, [&](const auto&... operands) {
      map_pair<decltype(zero)>(f.grid, a.grads[0], math::Derivative<F, 0>{scale}, a.grads[1],
                               math::SecondDerivative<F>{scale}, launch, a.grad, operands...);
    });
  });
}

#define FUSEDGAN_ELEMENTWISE(name, Formula)                                                                    \
  template bool elementwise_forward<Formula>(const ElementwiseArgs&, Reduction, void* out, void* grad_input, \
                                             Launch);                                                        \
  template void elementwise_backward<Formula>(const ElementwiseBackwardArgs&, Launch);
#include "../kernels.def"

}  // namespace fusedgan::cuda

// What the elementwise losses' torch glue shares (bce.cpp, binary_entropy.cpp): their tensors
// as the kernels see them, the runs of their two kernels (kernels.def), and their backward in
// ATen ops on the same formula, for create_graph.
#pragma once

#include <array>
#include <utility>

#include "../math/losses.h"
#include "device.h"
#include "layout.h"
#include "output.h"
#include "tensor_math.h"

namespace fusedgan {

// The operands of a call in its formula's order (absent weights: nullopt) and the incoming
// gradient, cast to the compute dtype and planned over the input's shape.
class ElementwiseCall {
 public:
  using Operands = std::array<OptionalTensor, kMaxOperands>;

  ElementwiseCall(at::ScalarType dtype, const Tensor& input, const Operands& operands, double unit,
                  const OptionalTensor& grad = std::nullopt)
      : options_(input.options().dtype(dtype)),
        cast_{cast(operands[0], dtype), cast(operands[1], dtype), cast(operands[2], dtype), cast(operands[3], dtype),
              cast(grad, dtype)},
        plan_(plan(input.sizes(), {&cast_[0], &cast_[1], &cast_[2], &cast_[3], &cast_[4]})),
        args_{kernel_dtype(dtype), plan_.grid, {plan_.operands[0], plan_.operands[1], plan_.operands[2], plan_.operands[3]},
              unit} {}

  const ElementwiseArgs& args() const { return args_; }
  Operand grad() const { return plan_.operands[4]; }
  const at::TensorOptions& options() const { return options_; }

 private:
  at::TensorOptions options_;
  std::array<OptionalTensor, kMaxOperands + 1> cast_;
  Plan plan_;
  ElementwiseArgs args_;
};

struct ElementwiseForward {
  Tensor loss;
  Tensor grad_input;  // defined when asked for
  bool in_domain;     // whether the first operand stayed in the formula's domain (CPU)
};

// The forward kernel of the loss that select(kernel table) names: the loss, of the input's
// shape for reduction none and one value otherwise, and with_grad (mean or sum only) the input
// gradient at grad = 1 from the same pass.
template <class Select>
ElementwiseForward run_forward(const Select& select, const Tensor& input, const ElementwiseCall& call,
                               Reduction reduction, bool with_grad) {
  Tensor loss = reduction == Reduction::None ? new_output(input.sizes(), call.options()) : at::empty({}, call.options());
  Tensor grad_input = with_grad ? new_output(input.sizes(), call.options()) : Tensor();
  const bool in_domain = on_device(input, [&](const auto& kernels, auto... launch) {
    return select(kernels).forward(call.args(), reduction, loss.data_ptr(),
                                   with_grad ? grad_input.data_ptr() : nullptr, launch...);
  });
  return {loss, grad_input, in_domain};
}

// The backward kernel: grad times the gradients by the first two operands, where wanted.
template <class Select>
std::array<Tensor, 2> run_backward(const Select& select, const Tensor& input, const ElementwiseCall& call,
                                   Reduction reduction, std::array<bool, 2> wanted) {
  std::array<Tensor, 2> grads;
  void* outputs[2] = {nullptr, nullptr};
  for (int k = 0; k < 2; ++k) {
    if (!wanted[k]) continue;
    grads[k] = new_output(input.sizes(), call.options());
    outputs[k] = grads[k].data_ptr();
  }
  const ElementwiseBackwardArgs args{call.args(), call.grad(), reduction_scale(call.args().grid, reduction),
                                     {outputs[0], outputs[1]}};
  if (input.numel() > 0) {
    on_device(input, [&](const auto& kernels, auto... launch) { select(kernels).backward(args, launch...); });
  }
  return grads;
}

// The same gradients in ATen ops on Formula (tensor_math.h), differentiable again: for
// create_graph. `operands` are the call's in the formula's order (absent weights read as 1).
template <class Formula>
std::array<Tensor, 2> differentiable_backward(const Tensor& grad, const Tensor& input,
                                              const ElementwiseCall::Operands& operands, Reduction reduction,
                                              double unit, std::array<bool, 2> wanted) {
  using tensor_math::Expr;
  Tensor g = grad * math::unit_of<Formula>(unit);
  if (reduction == Reduction::Mean) g = g / c10::Scalar(input.sym_numel());
  const auto expr = [](const OptionalTensor& t) { return t ? Expr(*t) : Expr(1.0); };
  const auto apply = [&](const auto& derivative) {
    return [&]<size_t... I>(std::index_sequence<I...>) {
      return derivative(expr(operands[I])...);
    }(std::make_index_sequence<Formula::kOperands>{});
  };
  std::array<Tensor, 2> grads;
  if (wanted[0]) {
    grads[0] = g * apply([](const auto&... v) { return Formula::grad_input(v...); }).to_tensor(input);
  }
  if constexpr (Formula::kGradients == 2) {
    if (wanted[1]) grads[1] = g * apply([](const auto&... v) { return Formula::grad_target(v...); }).to_tensor(input);
  }
  return grads;
}

}  // namespace fusedgan

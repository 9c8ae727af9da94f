// The elementwise losses' torch glue (bce.cpp, binary_entropy.cpp), written once: checks,
// kernels for CPU and CUDA, Meta and Autograd, for any op that a description struct Op states:
//   kName, kNode              the op, for messages, and its backward node's name
//   kOperands                 the operands' names, in the formula's order
//   Formula                   the op's formula, a struct of csrc/math/losses.h
//   kernels                   [](const auto& table) -> const auto& { return table.<its row>; }
//   dtype(arguments)          the dtype the op computes in, after the checks only it has
//   call_forward(arguments), call_backward(grad, arguments, mask): its ops, through the dispatcher
// and optionally
//   call_and_grad(arguments)  its _and_grad op (the reduced loss with its input gradient from one
//                             pass, which autograd keeps; Formula then has loss_and_grad)
//   kOutsideDomain            the message for a first operand outside Formula's domain
// The op's own file maps its schemas' arguments onto ElementwiseArguments and registers the
// functions of Elementwise<Op>.
#pragma once

#include <torch/csrc/autograd/function.h>

#include <ATen/ExpandUtils.h>

#include <array>
#include <utility>

#include "../math/losses.h"
#include "autograd.h"
#include "checks.h"
#include "device.h"
#include "layout.h"
#include "output.h"
#include "tensor_math.h"

namespace fusedgan {

using GradientMask = std::array<bool, 2>;  // by operand 0, by operand 1

// A call's arguments, whatever its schema: the operands in the formula's order (absent
// weights: nullopt), the reduction, and the entropy's base where the op has one.
struct ElementwiseArguments {
  std::array<OptionalTensor, kMaxOperands> operands;
  int64_t reduction;
  std::optional<double> base = std::nullopt;
  const Tensor& input() const { return *operands[0]; }
};

// The operands and the incoming gradient of a call, cast to the compute dtype and planned over
// the input's shape (layout.h).
class ElementwiseCall {
 public:
  ElementwiseCall(at::ScalarType dtype, const ElementwiseArguments& a, double unit,
                  const OptionalTensor& grad = std::nullopt)
      : options_(a.input().options().dtype(dtype)),
        cast_(cast_all(dtype, a, grad)),
        plan_(plan(a.input().sizes(), {&cast_[0], &cast_[1], &cast_[2], &cast_[3], &cast_[4]})),
        args_{kernel_dtype(dtype), plan_.grid, {plan_.operands[0], plan_.operands[1], plan_.operands[2], plan_.operands[3]},
              unit} {}

  const ElementwiseArgs& args() const { return args_; }
  Operand grad() const { return plan_.operands[4]; }
  const at::TensorOptions& options() const { return options_; }

 private:
  using Casts = std::array<OptionalTensor, kMaxOperands + 1>;  // the operands, then grad
  static Casts cast_all(at::ScalarType dtype, const ElementwiseArguments& a, const OptionalTensor& grad) {
    const c10::Device device = a.input().device();
    Casts casts;
    for (int k = 0; k < kMaxOperands; ++k) casts[k] = cast(a.operands[k], dtype, device);
    casts[kMaxOperands] = cast(grad, dtype, device);
    return casts;
  }

  at::TensorOptions options_;
  Casts cast_;
  Plan plan_;
  ElementwiseArgs args_;
};

template <class Op>
struct Elementwise {
  using Formula = typename Op::Formula;
  static constexpr int kLeading = Formula::kOperands - Formula::kWeights;  // input (and target)

  // ---- checks: every one names the op and the argument

  // Checks the arguments; returns the compute dtype and the unit (1 / log(base), or 1).
  static std::pair<at::ScalarType, double> check(const ElementwiseArguments& a) {
    const Tensor& input = a.input();
    check_floating(Op::kName, Op::kOperands[0], input);
    for (int k = 1; k < kLeading; ++k) {  // the target: input's shape
      check_floating(Op::kName, Op::kOperands[k], *a.operands[k]);
      check_same_device(Op::kName, Op::kOperands[k], *a.operands[k], input);
      check_same_shape(Op::kName, Op::kOperands[k], *a.operands[k], input);
    }
    for (int k = kLeading; k < Formula::kOperands; ++k) check_broadcastable(Op::kName, Op::kOperands[k], a.operands[k], input);
    check_reduction(Op::kName, a.reduction);
    const double unit = check_base(Op::kName, a.base);
    return {Op::dtype(a), unit};
  }

  // The incoming gradient: broadcastable to the input for reduction none, one element otherwise.
  static void check_backward_grad(const Tensor& grad, const ElementwiseArguments& a) {
    check_floating(Op::kName, "grad", grad);
    check_same_device(Op::kName, "grad", grad, a.input());
    if (a.reduction == int64_t(Reduction::None)) {
      TORCH_CHECK(at::is_expandable_to(grad.sym_sizes(), a.input().sym_sizes()), Op::kName, ": grad of shape ",
                  grad.sym_sizes(), " cannot be broadcast to the input's shape ", a.input().sym_sizes());
    } else {
      TORCH_CHECK(grad.sym_numel() == 1, Op::kName, ": grad of a reduced loss must have one element, got shape ",
                  grad.sym_sizes());
    }
  }

  static void check_reduced(const ElementwiseArguments& a) {
    TORCH_CHECK_VALUE(a.reduction != int64_t(Reduction::None), "_", Op::kName,
                      "_and_grad: reduction must be 1 (mean) or 2 (sum), got 0 (none)");
  }

  // ---- CPU and CUDA

  // The loss (of the input's shape for reduction none, else one value) and, with_grad, its
  // input gradient at grad = 1 from the same pass.
  static std::tuple<Tensor, Tensor> forward_with_grad(const ElementwiseArguments& a, bool with_grad) {
    const auto [dtype, unit] = check(a);
    const ElementwiseCall call(dtype, a, unit);
    const Tensor& input = a.input();
    const auto reduction = Reduction(a.reduction);
    Tensor loss = reduction == Reduction::None ? new_output(input.sizes(), call.options()) : at::empty({}, call.options());
    Tensor grad_input = with_grad ? new_output(input.sizes(), call.options()) : Tensor();
    const bool in_domain = on_device(input, [&](const auto& kernels, auto... launch) {
      return Op::kernels(kernels).forward(call.args(), reduction, loss.data_ptr(),
                                          with_grad ? grad_input.data_ptr() : nullptr, launch...);
    });
    if constexpr (requires { Op::kOutsideDomain; }) {
      TORCH_CHECK(in_domain, Op::kName, ": ", Op::kOutsideDomain);
    }
    return {loss, grad_input};
  }

  static Tensor forward(const ElementwiseArguments& a) { return std::get<0>(forward_with_grad(a, false)); }

  static std::tuple<Tensor, Tensor> and_grad(const ElementwiseArguments& a) {
    check_reduced(a);
    return forward_with_grad(a, true);
  }

  // grad times the gradients by the first two operands, where wanted.
  static std::array<Tensor, 2> backward(const Tensor& grad, const ElementwiseArguments& a, GradientMask wanted) {
    const auto [dtype, unit] = check(a);
    check_backward_grad(grad, a);
    const ElementwiseCall call(dtype, a, unit, grad);
    const Tensor& input = a.input();
    std::array<Tensor, 2> grads;
    void* outputs[2] = {nullptr, nullptr};
    for (int k = 0; k < Formula::kGradients; ++k) {
      if (!wanted[k]) continue;
      grads[k] = new_output(input.sizes(), call.options());
      outputs[k] = grads[k].data_ptr();
    }
    const ElementwiseBackwardArgs args{call.args(), call.grad(), reduction_scale(call.args().grid, Reduction(a.reduction)),
                                       {outputs[0], outputs[1]}};
    if (input.numel() > 0) {
      on_device(input, [&](const auto& kernels, auto... launch) { Op::kernels(kernels).backward(args, launch...); });
    }
    return grads;
  }

  // ---- Meta: shapes and dtypes only, symbolic sizes welcome

  static at::TensorOptions options_meta(const ElementwiseArguments& a) {
    return a.input().options().dtype(check(a).first);
  }

  static Tensor forward_meta(const ElementwiseArguments& a) {
    const auto options = options_meta(a);
    return a.reduction == int64_t(Reduction::None) ? at::empty_symint(a.input().sym_sizes(), options)
                                                   : at::empty({}, options);
  }

  static std::tuple<Tensor, Tensor> and_grad_meta(const ElementwiseArguments& a) {
    check_reduced(a);
    const auto options = options_meta(a);
    return {at::empty({}, options), at::empty_symint(a.input().sym_sizes(), options)};
  }

  static std::array<Tensor, 2> backward_meta(const Tensor& grad, const ElementwiseArguments& a, GradientMask wanted) {
    const auto options = options_meta(a);
    check_backward_grad(grad, a);
    std::array<Tensor, 2> grads;
    for (int k = 0; k < Formula::kGradients; ++k) {
      if (wanted[k]) grads[k] = at::empty_symint(a.input().sym_sizes(), options);
    }
    return grads;
  }

  // ---- Autograd

  // The differentiable inputs (the first kGradients operands) as autograd's edges.
  static torch::autograd::variable_list differentiable(const ElementwiseArguments& a) {
    torch::autograd::variable_list inputs;
    for (int k = 0; k < Formula::kGradients; ++k) inputs.push_back(*a.operands[k]);
    return inputs;
  }

  // Whether autograd must record a call: grad mode, and a differentiable input requiring grad.
  static bool records(const ElementwiseArguments& a) {
    bool any = false;
    for (int k = 0; k < Formula::kGradients; ++k) any = any || a.operands[k]->requires_grad();
    return at::GradMode::is_enabled() && any;
  }

  static bool has_input_tangents(const ElementwiseArguments& a) {
    bool any = false;
    for (int k = 0; k < Formula::kGradients; ++k) any = any || tangent_of(a.operands[k]).defined();
    return any;
  }

  static Tensor forward_autograd(const ElementwiseArguments& a) {
    for (int k = Formula::kGradients; k < Formula::kOperands; ++k) {
      const bool differentiated = a.operands[k] && ((at::GradMode::is_enabled() && a.operands[k]->requires_grad()) ||
                                                    tangent_of(a.operands[k]).defined());
      TORCH_CHECK(!differentiated, Op::kName, " is not differentiable with respect to ", Op::kOperands[k],
                  ", which must not require grad or have a tangent (as in torch)");
    }
    const bool forward_ad = has_input_tangents(a);
    Tensor loss;
    {
      at::AutoDispatchBelowADInplaceOrView guard;
      if (!records(a) && !forward_ad) return Op::call_forward(a);
      // A reduced loss with an _and_grad op, of which only the input needs a gradient, computes
      // that gradient in the forward pass and keeps it, unless a transform would not use it.
      std::vector<Tensor> kept;  // none, or one per differentiable input
      if constexpr (requires { Op::call_and_grad(a); }) {
        if (records(a) && !forward_ad && !transformed(a.input()) && a.reduction != int64_t(Reduction::None) &&
            (Formula::kGradients == 1 || !a.operands[1]->requires_grad())) {
          kept.resize(Formula::kGradients);
          std::tie(loss, kept[0]) = Op::call_and_grad(a);
        }
      }
      if (!loss.defined()) loss = Op::call_forward(a);
      if (records(a)) record_loss_node(loss, a, std::move(kept));
    }
    if (forward_ad) set_tangent(loss, tangent(a));  // in ATen ops that autograd records
    return loss;
  }

  // Records the loss's node; its backward calls the backward op through the dispatcher (with
  // create_graph, the backward op's autograd kernel records it in turn).
  static void record_loss_node(const Tensor& loss, const ElementwiseArguments& a, std::vector<Tensor> kept) {
    torch::autograd::variable_list to_save;
    for (const auto& operand : a.operands) to_save.push_back(operand.value_or(Tensor()));
    record_backward(loss, Op::kNode, differentiable(a), std::move(kept), to_save,
                    [reduction = a.reduction, base = a.base](const torch::autograd::variable_list& saved,
                                                               const Tensor& grad, const std::vector<bool>& wanted) {
                      ElementwiseArguments again{{}, reduction, base};
                      for (size_t k = 0; k < saved.size(); ++k) {
                        if (saved[k].defined()) again.operands[k] = saved[k];
                      }
                      const auto grads = Op::call_backward(grad, again, {wanted[0], wanted.size() > 1 && wanted[1]});
                      return torch::autograd::variable_list(grads.begin(), grads.begin() + Formula::kGradients);
                    });
  }

  // The loss's tangent: the derivatives by the differentiable operands (the formula on the
  // primals, in ATen ops) times their tangents, reduced like the loss.
  static Tensor tangent(const ElementwiseArguments& a) {
    ElementwiseArguments primals = a;
    for (auto& operand : primals.operands) operand = primal_of(operand);
    const auto [dtype, unit] = check(primals);
    Tensor total;
    for (int k = 0; k < Formula::kGradients; ++k) {
      const Tensor t = tangent_of(a.operands[k]);
      if (!t.defined()) continue;
      const GradientMask only{k == 0, k == 1};
      const Tensor term = a.reduction == int64_t(Reduction::None)
                              ? differentiable_backward(t, primals, dtype, unit, only)[k]
                              : (differentiable_backward(at::ones({}, t.options()), primals, dtype, unit, only)[k] * t).sum();
      total = total.defined() ? total + term : term;
    }
    return total;
  }

  // The backward op's own derivative: where a graph must be recorded or a tangent carried, the
  // gradients are the formula's in ATen ops (tensor_math.h), which autograd differentiates.
  static std::array<Tensor, 2> backward_autograd(const Tensor& grad, const ElementwiseArguments& a, GradientMask wanted) {
    if (!records(a) && !records_grad(grad) && !has_input_tangents(a) && !tangent_of(grad).defined()) {
      at::AutoDispatchBelowADInplaceOrView guard;
      return Op::call_backward(grad, a, wanted);
    }
    const auto [dtype, unit] = check(a);
    check_backward_grad(grad, a);
    return differentiable_backward(grad, a, dtype, unit, wanted);
  }

  // The _and_grad op is the first-order pass of the loss's autograd, not differentiable itself.
  static std::tuple<Tensor, Tensor> and_grad_autograd(const ElementwiseArguments& a) {
    check_first_order(records(a) || has_input_tangents(a), std::string("_") + Op::kName + "_and_grad", Op::kName, "loss");
    at::AutoDispatchBelowADInplaceOrView guard;
    return Op::call_and_grad(a);
  }

  static std::array<Tensor, 2> differentiable_backward(const Tensor& grad, const ElementwiseArguments& a,
                                                       at::ScalarType dtype, double unit, GradientMask wanted) {
    using tensor_math::computed_in;
    Tensor g = grad.to(tensor_math::computation_dtype(dtype)) * math::unit_of<Formula>(unit);
    if (a.reduction == int64_t(Reduction::Mean)) g = g / c10::Scalar(a.input().sym_numel());
    const auto apply = [&](const auto& derivative) {
      const Tensor& like = a.input();
      return [&]<size_t... I>(std::index_sequence<I...>) {
        return derivative(computed_in(a.operands[I], dtype)...);
      }(std::make_index_sequence<Formula::kOperands>{}).to_tensor(like);
    };
    std::array<Tensor, 2> grads;
    if (wanted[0]) grads[0] = (g * apply([](const auto&... v) { return Formula::grad_input(v...); })).to(dtype);
    if constexpr (Formula::kGradients == 2) {
      if (wanted[1]) grads[1] = (g * apply([](const auto&... v) { return Formula::grad_target(v...); })).to(dtype);
    }
    return grads;
  }
};

}  // namespace fusedgan

// Binary cross-entropy as torch operators, in two forms: binary_cross_entropy_with_logits and
// binary_cross_entropy (probabilities), each with a _backward op and an _and_grad op (the
// reduced loss with its input gradient from one pass, which autograd keeps: autograd.h). The
// forms differ in name, formula (csrc/math/bce.h), dtype rule and pos_weight, which a form
// struct states; every function below is written once for both.
#include <torch/library.h>

#include "autograd.h"
#include "checks.h"
#include "dispatch.h"
#include "elementwise.h"

namespace fusedgan {
namespace {

using torch::autograd::variable_list;
using OutputMask = std::array<bool, 2>;  // input, target

struct WithLogits {
  static constexpr const char* kName = "binary_cross_entropy_with_logits";
  static constexpr const char* kNode = "BinaryCrossEntropyWithLogitsBackward";
  static constexpr OpName kForwardOp = "fusedgan::binary_cross_entropy_with_logits";
  static constexpr OpName kBackwardOp = "fusedgan::_binary_cross_entropy_with_logits_backward";
  static constexpr OpName kAndGradOp = "fusedgan::_binary_cross_entropy_with_logits_and_grad";
  using Formula = math::BceWithLogits;
  static constexpr auto kernels = [](const auto& table) -> const auto& { return table.bce_with_logits; };
  // Computes in the promoted dtype of input and target.
  static at::ScalarType dtype(const Tensor& input, const Tensor& target) {
    return at::promote_types(input.scalar_type(), target.scalar_type());
  }
  // The op's arguments from (input, target, weight, pos_weight): all four.
  template <class Call>
  static decltype(auto) pass(const Call& call, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                             const OptionalTensor& pos_weight) {
    return call(input, target, weight, pos_weight);
  }
};

struct Probabilities {
  static constexpr const char* kName = "binary_cross_entropy";
  static constexpr const char* kNode = "BinaryCrossEntropyBackward";
  static constexpr OpName kForwardOp = "fusedgan::binary_cross_entropy";
  static constexpr OpName kBackwardOp = "fusedgan::_binary_cross_entropy_backward";
  static constexpr OpName kAndGradOp = "fusedgan::_binary_cross_entropy_and_grad";
  using Formula = math::Bce;
  static constexpr auto kernels = [](const auto& table) -> const auto& { return table.bce; };
  // Computes in input's dtype, which target must share (as in torch).
  static at::ScalarType dtype(const Tensor& input, const Tensor& target) {
    TORCH_CHECK(target.scalar_type() == input.scalar_type(), kName, ": expected target of dtype ", input.scalar_type(),
                " like input, got ", target.scalar_type());
    return input.scalar_type();
  }
  // No pos_weight in this form's ops.
  template <class Call>
  static decltype(auto) pass(const Call& call, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                             const OptionalTensor&) {
    return call(input, target, weight);
  }
};

// ---- checks

// Checks the arguments; returns the dtype the op computes in.
template <class Form>
at::ScalarType check_arguments(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                               const OptionalTensor& pos_weight, int64_t reduction) {
  check_floating(Form::kName, "input", input);
  check_floating(Form::kName, "target", target);
  check_same_device(Form::kName, "target", target, input);
  check_same_shape(Form::kName, "target", target, input);
  check_broadcastable(Form::kName, "weight", weight, input);
  check_broadcastable(Form::kName, "pos_weight", pos_weight, input);
  check_reduction(Form::kName, reduction);
  return Form::dtype(input, target);
}

template <class Form>
void check_backward_grad(const Tensor& grad, const Tensor& input, int64_t reduction) {
  check_floating(Form::kName, "grad", grad);
  check_same_device(Form::kName, "grad", grad, input);
  if (reduction == int64_t(Reduction::None)) {
    TORCH_CHECK(at::is_expandable_to(grad.sym_sizes(), input.sym_sizes()), Form::kName, ": grad of shape ",
                grad.sym_sizes(), " cannot be broadcast to the input's shape ", input.sym_sizes());
  } else {
    TORCH_CHECK(grad.sym_numel() == 1, Form::kName, ": grad of a reduced loss must have one element, got shape ",
                grad.sym_sizes());
  }
}

template <class Form>
void check_reduced(int64_t reduction) {
  TORCH_CHECK_VALUE(reduction != int64_t(Reduction::None), "_", Form::kName,
                    "_and_grad: reduction must be 1 (mean) or 2 (sum), got 0 (none)");
}

// ---- CPU and CUDA

// The loss and, with_grad (reduced losses only), its input gradient at grad = 1.
template <class Form>
std::tuple<Tensor, Tensor> forward_with_grad(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                                             const OptionalTensor& pos_weight, int64_t reduction, bool with_grad) {
  const auto dtype = check_arguments<Form>(input, target, weight, pos_weight, reduction);
  const ElementwiseCall call(dtype, input, {input, target, weight, pos_weight}, 1.0);
  const auto result = run_forward(Form::kernels, input, call, Reduction(reduction), with_grad);
  TORCH_CHECK(result.in_domain, Form::kName,
              ": all elements of input should be between 0 and 1 (input holds probabilities; "
              "binary_cross_entropy_with_logits takes logits)");
  return {result.loss, result.grad_input};
}

template <class Form>
Tensor forward(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
               const OptionalTensor& pos_weight, int64_t reduction) {
  return std::get<0>(forward_with_grad<Form>(input, target, weight, pos_weight, reduction, false));
}

template <class Form>
std::tuple<Tensor, Tensor> and_grad(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                                    const OptionalTensor& pos_weight, int64_t reduction) {
  check_reduced<Form>(reduction);
  return forward_with_grad<Form>(input, target, weight, pos_weight, reduction, true);
}

template <class Form>
std::tuple<Tensor, Tensor> backward(const Tensor& grad, const Tensor& input, const Tensor& target,
                                    const OptionalTensor& weight, const OptionalTensor& pos_weight, int64_t reduction,
                                    OutputMask mask) {
  const auto dtype = check_arguments<Form>(input, target, weight, pos_weight, reduction);
  check_backward_grad<Form>(grad, input, reduction);
  const ElementwiseCall call(dtype, input, {input, target, weight, pos_weight}, 1.0, grad);
  auto [grad_input, grad_target] = run_backward(Form::kernels, input, call, Reduction(reduction), mask);
  return {grad_input, grad_target};
}

// ---- Meta: shapes and dtypes only, symbolic sizes welcome

template <class Form>
Tensor forward_meta(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                    const OptionalTensor& pos_weight, int64_t reduction) {
  const auto options = input.options().dtype(check_arguments<Form>(input, target, weight, pos_weight, reduction));
  return reduction == int64_t(Reduction::None) ? at::empty_symint(input.sym_sizes(), options) : at::empty({}, options);
}

template <class Form>
std::tuple<Tensor, Tensor> and_grad_meta(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                                         const OptionalTensor& pos_weight, int64_t reduction) {
  check_reduced<Form>(reduction);
  const auto options = input.options().dtype(check_arguments<Form>(input, target, weight, pos_weight, reduction));
  return {at::empty({}, options), at::empty_symint(input.sym_sizes(), options)};
}

template <class Form>
std::tuple<Tensor, Tensor> backward_meta(const Tensor& grad, const Tensor& input, const Tensor& target,
                                         const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                         int64_t reduction, OutputMask mask) {
  const auto options = input.options().dtype(check_arguments<Form>(input, target, weight, pos_weight, reduction));
  check_backward_grad<Form>(grad, input, reduction);
  const auto gradient = [&](bool wanted) { return wanted ? at::empty_symint(input.sym_sizes(), options) : Tensor(); };
  return {gradient(mask[0]), gradient(mask[1])};
}

// ---- calls through the dispatcher

template <class Form>
Tensor call_forward(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                    const OptionalTensor& pos_weight, int64_t reduction) {
  return Form::pass([&](const auto&... operands) { return call_op<Form::kForwardOp, Tensor>(operands..., reduction); },
                    input, target, weight, pos_weight);
}

template <class Form>
std::tuple<Tensor, Tensor> call_and_grad(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                                         const OptionalTensor& pos_weight, int64_t reduction) {
  return Form::pass(
      [&](const auto&... operands) {
        return call_op<Form::kAndGradOp, std::tuple<Tensor, Tensor>>(operands..., reduction);
      },
      input, target, weight, pos_weight);
}

template <class Form>
std::tuple<Tensor, Tensor> call_backward(const Tensor& grad, const Tensor& input, const Tensor& target,
                                         const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                         int64_t reduction, OutputMask mask) {
  return Form::pass(
      [&](const auto&... operands) {
        return call_op<Form::kBackwardOp, std::tuple<Tensor, Tensor>>(grad, operands..., reduction, mask);
      },
      input, target, weight, pos_weight);
}

// ---- Autograd

OptionalTensor optional(const Tensor& t) { return t.defined() ? OptionalTensor(t) : std::nullopt; }

template <class Form>
void check_not_requiring_grad(const char* name, const OptionalTensor& t) {
  TORCH_CHECK(!(t && t->requires_grad()), Form::kName, " is not differentiable with respect to ", name,
              ", which must not require grad (as in torch)");
}

template <class Form>
Tensor forward_autograd(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                        const OptionalTensor& pos_weight, int64_t reduction) {
  if (at::GradMode::is_enabled()) {
    check_not_requiring_grad<Form>("weight", weight);
    check_not_requiring_grad<Form>("pos_weight", pos_weight);
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  if (!records_grad(input, target)) return call_forward<Form>(input, target, weight, pos_weight, reduction);
  // A reduced loss of which only the input needs a gradient computes that gradient in the
  // forward pass; other calls compute theirs in the backward op.
  const bool grad_in_forward = reduction != int64_t(Reduction::None) && !target.requires_grad();
  Tensor loss, grad_input;
  if (grad_in_forward) {
    std::tie(loss, grad_input) = call_and_grad<Form>(input, target, weight, pos_weight, reduction);
  } else {
    loss = call_forward<Form>(input, target, weight, pos_weight, reduction);
  }
  record_backward(loss, Form::kNode, {input, target},
                  grad_in_forward ? std::vector<Tensor>{grad_input, Tensor()} : std::vector<Tensor>{},
                  {input, target, weight.value_or(Tensor()), pos_weight.value_or(Tensor())},
                  [reduction](const variable_list& saved, const Tensor& grad, const std::vector<bool>& wanted) {
                    // Through the dispatcher: with create_graph the backward op's autograd kernel records it.
                    auto [grad_input, grad_target] =
                        call_backward<Form>(grad, saved[0], saved[1], optional(saved[2]), optional(saved[3]),
                                            reduction, OutputMask{wanted[0], wanted[1]});
                    return variable_list{grad_input, grad_target};
                  });
  return loss;
}

// The backward op's own derivative: where a graph must be recorded, the gradients are the
// formula's in ATen ops (elementwise.h), which autograd differentiates again.
template <class Form>
std::tuple<Tensor, Tensor> backward_autograd(const Tensor& grad, const Tensor& input, const Tensor& target,
                                             const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                             int64_t reduction, OutputMask mask) {
  if (!records_grad(grad, input, target)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward<Form>(grad, input, target, weight, pos_weight, reduction, mask);
  }
  check_arguments<Form>(input, target, weight, pos_weight, reduction);
  check_backward_grad<Form>(grad, input, reduction);
  auto [grad_input, grad_target] = differentiable_backward<typename Form::Formula>(
      grad, input, {input, target, weight, pos_weight}, Reduction(reduction), 1.0, mask);
  return {grad_input, grad_target};
}

// The _and_grad ops are the first-order pass of the losses' autograd, not differentiable
// themselves.
template <class Form>
std::tuple<Tensor, Tensor> and_grad_autograd(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                                             const OptionalTensor& pos_weight, int64_t reduction) {
  TORCH_CHECK(!records_grad(input, target), "_", Form::kName, "_and_grad is not differentiable; call ", Form::kName,
              " for a differentiable loss");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_and_grad<Form>(input, target, weight, pos_weight, reduction);
}

// ---- registration

// The probability form's ops take no pos_weight: these call the shared functions without one.
template <auto impl>
auto without_pos_weight(const Tensor& input, const Tensor& target, const OptionalTensor& weight, int64_t reduction) {
  return impl(input, target, weight, std::nullopt, reduction);
}
template <auto impl>
auto without_pos_weight_backward(const Tensor& grad, const Tensor& input, const Tensor& target,
                                 const OptionalTensor& weight, int64_t reduction, OutputMask mask) {
  return impl(grad, input, target, weight, std::nullopt, reduction, mask);
}

void register_device_kernels(torch::Library& m) {
  m.impl("binary_cross_entropy_with_logits", forward<WithLogits>);
  m.impl("_binary_cross_entropy_with_logits_and_grad", and_grad<WithLogits>);
  m.impl("_binary_cross_entropy_with_logits_backward", backward<WithLogits>);
  m.impl("binary_cross_entropy", without_pos_weight<forward<Probabilities>>);
  m.impl("_binary_cross_entropy_and_grad", without_pos_weight<and_grad<Probabilities>>);
  m.impl("_binary_cross_entropy_backward", without_pos_weight_backward<backward<Probabilities>>);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def(
      "binary_cross_entropy_with_logits(Tensor input, Tensor target, Tensor? weight=None, Tensor? pos_weight=None, "
      "int reduction=1) -> Tensor");
  m.def(
      "_binary_cross_entropy_with_logits_and_grad(Tensor input, Tensor target, Tensor? weight, Tensor? pos_weight, "
      "int reduction) -> (Tensor, Tensor)");
  m.def(
      "_binary_cross_entropy_with_logits_backward(Tensor grad, Tensor input, Tensor target, Tensor? weight, "
      "Tensor? pos_weight, int reduction, bool[2] output_mask) -> (Tensor, Tensor)");
  m.def("binary_cross_entropy(Tensor input, Tensor target, Tensor? weight=None, int reduction=1) -> Tensor");
  m.def(
      "_binary_cross_entropy_and_grad(Tensor input, Tensor target, Tensor? weight, int reduction) -> (Tensor, Tensor)");
  m.def(
      "_binary_cross_entropy_backward(Tensor grad, Tensor input, Tensor target, Tensor? weight, int reduction, "
      "bool[2] output_mask) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("binary_cross_entropy_with_logits", forward_meta<WithLogits>);
  m.impl("_binary_cross_entropy_with_logits_and_grad", and_grad_meta<WithLogits>);
  m.impl("_binary_cross_entropy_with_logits_backward", backward_meta<WithLogits>);
  m.impl("binary_cross_entropy", without_pos_weight<forward_meta<Probabilities>>);
  m.impl("_binary_cross_entropy_and_grad", without_pos_weight<and_grad_meta<Probabilities>>);
  m.impl("_binary_cross_entropy_backward", without_pos_weight_backward<backward_meta<Probabilities>>);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("binary_cross_entropy_with_logits", forward_autograd<WithLogits>);
  m.impl("_binary_cross_entropy_with_logits_and_grad", and_grad_autograd<WithLogits>);
  m.impl("_binary_cross_entropy_with_logits_backward", backward_autograd<WithLogits>);
  m.impl("binary_cross_entropy", without_pos_weight<forward_autograd<Probabilities>>);
  m.impl("_binary_cross_entropy_and_grad", without_pos_weight<and_grad_autograd<Probabilities>>);
  m.impl("_binary_cross_entropy_backward", without_pos_weight_backward<backward_autograd<Probabilities>>);
}

}  // namespace fusedgan

// Binary cross-entropy as torch operators, in two forms: binary_cross_entropy_with_logits and
// binary_cross_entropy (probabilities), each with a _backward op and an _and_grad op (the
// reduced loss with its input gradient from one pass, which autograd keeps). Elementwise losses
// (their formulas: csrc/math/losses.h), so the work is Elementwise<Form>'s (elementwise.h);
// here are what the forms differ in, their schemas and their registrations.
#include <torch/library.h>

#include "autocast.h"
#include "dispatch.h"
#include "elementwise.h"

namespace fusedgan {
namespace {

using Result = std::tuple<Tensor, Tensor>;

struct WithLogits {
  static constexpr const char* kName = "binary_cross_entropy_with_logits";
  static constexpr const char* kNode = "BceWithLogitsBackward";
  static constexpr const char* kOperands[] = {"input", "target", "weight", "pos_weight"};
  using Formula = math::BceWithLogits;
  static constexpr auto kernels = [](const auto& table) -> const auto& { return table.bce_with_logits; };

  // Computes in the promoted dtype of input and target.
  static at::ScalarType dtype(const ElementwiseArguments& a) {
    return at::promote_types(a.input().scalar_type(), a.operands[1]->scalar_type());
  }
  static Tensor call_forward(const ElementwiseArguments& a) {
    const auto& [input, target, weight, pos_weight] = a.operands;
    return call_op<"fusedgan::binary_cross_entropy_with_logits", Tensor>(*input, *target, weight, pos_weight,
                                                                          a.reduction);
  }
  static Result call_and_grad(const ElementwiseArguments& a) {
    const auto& [input, target, weight, pos_weight] = a.operands;
    return call_op<"fusedgan::_binary_cross_entropy_with_logits_and_grad", Result>(*input, *target, weight, pos_weight,
                                                                                   a.reduction);
  }
  static std::array<Tensor, 2> call_backward(const Tensor& grad, const ElementwiseArguments& a, GradientMask mask) {
    const auto& [input, target, weight, pos_weight] = a.operands;
    const auto [grad_input, grad_target] = call_op<"fusedgan::_binary_cross_entropy_with_logits_backward", Result>(
        grad, *input, *target, weight, pos_weight, a.reduction, mask);
    return {grad_input, grad_target};
  }
};

struct Probabilities {
  static constexpr const char* kName = "binary_cross_entropy";
  static constexpr const char* kNode = "BceBackward";
  static constexpr const char* kOperands[] = {"input", "target", "weight"};
  static constexpr const char* kOutsideDomain =
      "all elements of input should be between 0 and 1 (input holds probabilities; "
      "binary_cross_entropy_with_logits takes logits)";
  using Formula = math::Bce;
  static constexpr auto kernels = [](const auto& table) -> const auto& { return table.bce; };

  // Computes in input's dtype, which target must share (as in torch).
  static at::ScalarType dtype(const ElementwiseArguments& a) {
    const auto input = a.input().scalar_type(), target = a.operands[1]->scalar_type();
    TORCH_CHECK(target == input, kName, ": expected target of dtype ", input, " like input, got ", target);
    return input;
  }
  static Tensor call_forward(const ElementwiseArguments& a) {
    const auto& [input, target, weight, unused] = a.operands;
    return call_op<"fusedgan::binary_cross_entropy", Tensor>(*input, *target, weight, a.reduction);
  }
  static Result call_and_grad(const ElementwiseArguments& a) {
    const auto& [input, target, weight, unused] = a.operands;
    return call_op<"fusedgan::_binary_cross_entropy_and_grad", Result>(*input, *target, weight, a.reduction);
  }
  static std::array<Tensor, 2> call_backward(const Tensor& grad, const ElementwiseArguments& a, GradientMask mask) {
    const auto& [input, target, weight, unused] = a.operands;
    const auto [grad_input, grad_target] =
        call_op<"fusedgan::_binary_cross_entropy_backward", Result>(grad, *input, *target, weight, a.reduction, mask);
    return {grad_input, grad_target};
  }
};

// ---- the schemas' arguments as ElementwiseArguments, for each kind of function of Elementwise<Form>

template <auto impl>
auto with_logits(const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                 const OptionalTensor& pos_weight, int64_t reduction) {
  return impl({{input, target, weight, pos_weight}, reduction});
}
template <auto impl>
Result with_logits_backward(const Tensor& grad, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                            const OptionalTensor& pos_weight, int64_t reduction, GradientMask mask) {
  const auto grads = impl(grad, {{input, target, weight, pos_weight}, reduction}, mask);
  return {grads[0], grads[1]};
}
template <auto impl>
auto probabilities(const Tensor& input, const Tensor& target, const OptionalTensor& weight, int64_t reduction) {
  return impl({{input, target, weight}, reduction});
}
template <auto impl>
Result probabilities_backward(const Tensor& grad, const Tensor& input, const Tensor& target,
                              const OptionalTensor& weight, int64_t reduction, GradientMask mask) {
  const auto grads = impl(grad, {{input, target, weight}, reduction}, mask);
  return {grads[0], grads[1]};
}

using Logits = Elementwise<WithLogits>;
using Probs = Elementwise<Probabilities>;

void register_device_kernels(torch::Library& m) {
  m.impl("binary_cross_entropy_with_logits", with_logits<Logits::forward>);
  m.impl("_binary_cross_entropy_with_logits_and_grad", with_logits<Logits::and_grad>);
  m.impl("_binary_cross_entropy_with_logits_backward", with_logits_backward<Logits::backward>);
  m.impl("binary_cross_entropy", probabilities<Probs::forward>);
  m.impl("_binary_cross_entropy_and_grad", probabilities<Probs::and_grad>);
  m.impl("_binary_cross_entropy_backward", probabilities_backward<Probs::backward>);
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
  m.impl("binary_cross_entropy_with_logits", with_logits<Logits::forward_meta>);
  m.impl("_binary_cross_entropy_with_logits_and_grad", with_logits<Logits::and_grad_meta>);
  m.impl("_binary_cross_entropy_with_logits_backward", with_logits_backward<Logits::backward_meta>);
  m.impl("binary_cross_entropy", probabilities<Probs::forward_meta>);
  m.impl("_binary_cross_entropy_and_grad", probabilities<Probs::and_grad_meta>);
  m.impl("_binary_cross_entropy_backward", probabilities_backward<Probs::backward_meta>);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("binary_cross_entropy_with_logits", with_logits<Logits::forward_autograd>);
  m.impl("_binary_cross_entropy_with_logits_and_grad", with_logits<Logits::and_grad_autograd>);
  m.impl("_binary_cross_entropy_with_logits_backward", with_logits_backward<Logits::backward_autograd>);
  m.impl("binary_cross_entropy", probabilities<Probs::forward_autograd>);
  m.impl("_binary_cross_entropy_and_grad", probabilities<Probs::and_grad_autograd>);
  m.impl("_binary_cross_entropy_backward", probabilities_backward<Probs::backward_autograd>);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCPU, m) { register_float32_autocast(m, {"binary_cross_entropy_with_logits", "binary_cross_entropy"}); }
TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"binary_cross_entropy_with_logits", "binary_cross_entropy"}); }

}  // namespace fusedgan

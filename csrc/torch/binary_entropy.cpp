// fusedgan::binary_entropy_with_logits: the entropy of Bernoulli(sigmoid(logits)) per element,
// reduced like a loss, in units of `base`, with a _backward op. An elementwise loss of one
// operand (its formula: csrc/math/losses.h), so the work is Elementwise's (elementwise.h);
// here are its description, its schemas and its registrations.
#include <torch/library.h>

#include "autocast.h"
#include "dispatch.h"
#include "elementwise.h"

namespace fusedgan {
namespace {

using OptionalDouble = std::optional<double>;

struct BinaryEntropy {
  static constexpr const char* kName = "binary_entropy_with_logits";
  static constexpr const char* kNode = "BinaryEntropyWithLogitsBackward";
  static constexpr const char* kOperands[] = {"logits"};
  using Formula = math::BinaryEntropyWithLogits;
  static constexpr auto kernels = [](const auto& table) -> const auto& { return table.binary_entropy_with_logits; };

  static at::ScalarType dtype(const ElementwiseArguments& a) { return a.input().scalar_type(); }
  static Tensor call_forward(const ElementwiseArguments& a) {
    return call_op<"fusedgan::binary_entropy_with_logits", Tensor>(a.input(), a.reduction, a.base);
  }
  static std::array<Tensor, 2> call_backward(const Tensor& grad, const ElementwiseArguments& a, GradientMask) {
    return {call_op<"fusedgan::_binary_entropy_with_logits_backward", Tensor>(grad, a.input(), a.reduction, a.base),
            Tensor()};
  }
};

// ---- the schemas' arguments as ElementwiseArguments

template <auto impl>
Tensor entropy(const Tensor& logits, int64_t reduction, OptionalDouble base) {
  return impl({{logits}, reduction, base});
}
template <auto impl>
Tensor entropy_backward(const Tensor& grad, const Tensor& logits, int64_t reduction, OptionalDouble base) {
  return impl(grad, {{logits}, reduction, base}, {true, false})[0];
}

using Op = Elementwise<BinaryEntropy>;

void register_device_kernels(torch::Library& m) {
  m.impl("binary_entropy_with_logits", entropy<Op::forward>);
  m.impl("_binary_entropy_with_logits_backward", entropy_backward<Op::backward>);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("binary_entropy_with_logits(Tensor logits, int reduction=0, float? base=None) -> Tensor");
  m.def("_binary_entropy_with_logits_backward(Tensor grad, Tensor logits, int reduction, float? base) -> Tensor");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("binary_entropy_with_logits", entropy<Op::forward_meta>);
  m.impl("_binary_entropy_with_logits_backward", entropy_backward<Op::backward_meta>);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("binary_entropy_with_logits", entropy<Op::forward_autograd>);
  m.impl("_binary_entropy_with_logits_backward", entropy_backward<Op::backward_autograd>);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCPU, m) { register_float32_autocast(m, {"binary_entropy_with_logits"}); }
TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"binary_entropy_with_logits"}); }

}  // namespace fusedgan

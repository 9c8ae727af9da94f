// fusedgan::binary_entropy_with_logits: the entropy of Bernoulli(sigmoid(logits)) per element,
// reduced like a loss, with a _backward op. An elementwise loss of one operand (its formula:
// csrc/math/entropy.h), so its kernels and glue are the elementwise ones (elementwise.h).
#include <torch/library.h>

#include "autograd.h"
#include "checks.h"
#include "dispatch.h"
#include "elementwise.h"

namespace fusedgan {
namespace {

using torch::autograd::variable_list;
using OptionalDouble = std::optional<double>;
using Formula = math::BinaryEntropyWithLogits;

constexpr const char* kOp = "binary_entropy_with_logits";
constexpr auto kKernels = [](const auto& table) -> const auto& { return table.binary_entropy_with_logits; };

// Checks the arguments; returns the unit (1 / log(base)).
double check_arguments(const Tensor& logits, int64_t reduction, const OptionalDouble& base) {
  check_floating(kOp, "logits", logits);
  check_reduction(kOp, reduction);
  return check_base(kOp, base);
}

c10::SymDimVector output_sizes(const Tensor& logits, int64_t reduction) {
  if (reduction != int64_t(Reduction::None)) return {};
  return c10::SymDimVector(logits.sym_sizes().begin(), logits.sym_sizes().end());
}

// ---- CPU and CUDA

Tensor forward(const Tensor& logits, int64_t reduction, OptionalDouble base) {
  const double unit = check_arguments(logits, reduction, base);
  const ElementwiseCall call(logits.scalar_type(), logits, {logits}, unit);
  return run_forward(kKernels, logits, call, Reduction(reduction), false).loss;
}

Tensor backward(const Tensor& grad, const Tensor& logits, int64_t reduction, OptionalDouble base) {
  const double unit = check_arguments(logits, reduction, base);
  check_grad(kOp, grad, logits, output_sizes(logits, reduction));
  const ElementwiseCall call(logits.scalar_type(), logits, {logits}, unit, grad);
  return run_backward(kKernels, logits, call, Reduction(reduction), {true, false})[0];
}

// ---- Meta

Tensor forward_meta(const Tensor& logits, int64_t reduction, OptionalDouble base) {
  check_arguments(logits, reduction, base);
  return at::empty_symint(output_sizes(logits, reduction), logits.options());
}

Tensor backward_meta(const Tensor& grad, const Tensor& logits, int64_t reduction, OptionalDouble base) {
  check_arguments(logits, reduction, base);
  check_grad(kOp, grad, logits, output_sizes(logits, reduction));
  return at::empty_symint(logits.sym_sizes(), logits.options());
}

// ---- calls through the dispatcher

Tensor call_forward(const Tensor& logits, int64_t reduction, const OptionalDouble& base) {
  return call_op<"fusedgan::binary_entropy_with_logits", Tensor>(logits, reduction, base);
}

Tensor call_backward(const Tensor& grad, const Tensor& logits, int64_t reduction, const OptionalDouble& base) {
  return call_op<"fusedgan::_binary_entropy_with_logits_backward", Tensor>(grad, logits, reduction, base);
}

// ---- Autograd

Tensor forward_autograd(const Tensor& logits, int64_t reduction, OptionalDouble base) {
  at::AutoDispatchBelowADInplaceOrView guard;
  Tensor entropy = call_forward(logits, reduction, base);
  if (records_grad(logits)) {
    record_backward(entropy, "BinaryEntropyWithLogitsBackward", {logits}, {}, {logits},
                    [reduction, base](const variable_list& saved, const Tensor& grad, const std::vector<bool>&) {
                      return variable_list{call_backward(grad, saved[0], reduction, base)};
                    });
  }
  return entropy;
}

// Where a graph must be recorded, the gradient is the formula's in ATen ops.
Tensor backward_autograd(const Tensor& grad, const Tensor& logits, int64_t reduction, OptionalDouble base) {
  if (!records_grad(grad, logits)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(grad, logits, reduction, base);
  }
  const double unit = check_arguments(logits, reduction, base);
  check_grad(kOp, grad, logits, output_sizes(logits, reduction));
  return differentiable_backward<Formula>(grad, logits, {logits}, Reduction(reduction), unit, {true, false})[0];
}

void register_device_kernels(torch::Library& m) {
  m.impl("binary_entropy_with_logits", forward);
  m.impl("_binary_entropy_with_logits_backward", backward);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("binary_entropy_with_logits(Tensor logits, int reduction=0, float? base=None) -> Tensor");
  m.def("_binary_entropy_with_logits_backward(Tensor grad, Tensor logits, int reduction, float? base) -> Tensor");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("binary_entropy_with_logits", forward_meta);
  m.impl("_binary_entropy_with_logits_backward", backward_meta);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("binary_entropy_with_logits", forward_autograd);
  m.impl("_binary_entropy_with_logits_backward", backward_autograd);
}

}  // namespace fusedgan

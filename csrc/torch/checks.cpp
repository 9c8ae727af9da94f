#include "checks.h"

#include <ATen/ExpandUtils.h>

#include <cmath>

namespace fusedgan {

void check_floating(const char* op, const char* name, const Tensor& t) {
  const auto type = t.scalar_type();
  TORCH_CHECK(type == at::kHalf || type == at::kBFloat16 || type == at::kFloat || type == at::kDouble, op,
              ": expected ", name, " to be a floating point tensor (float16, bfloat16, float32 or float64), got ",
              type);
}

void check_same_device(const char* op, const char* name, const Tensor& t, const Tensor& input) {
  TORCH_CHECK(t.device() == input.device(), op, ": expected ", name, " on ", input.device(),
              " like input, got ", t.device());
}

void check_operand_device(const char* op, const char* name, const Tensor& t, const Tensor& input) {
  if (t.dim() == 0 && t.is_cpu()) return;
  check_same_device(op, name, t, input);
}

void check_broadcastable(const char* op, const char* name, const OptionalTensor& t, const Tensor& input) {
  if (!t) return;
  check_floating(op, name, *t);
  check_operand_device(op, name, *t, input);
  TORCH_CHECK(at::is_expandable_to(t->sym_sizes(), input.sym_sizes()), op, ": ", name, " of shape ", t->sym_sizes(),
              " cannot be broadcast to the input's shape ", input.sym_sizes());
}

void check_same_shape(const char* op, const char* name, const Tensor& t, const Tensor& input) {
  TORCH_CHECK_VALUE(t.sym_sizes() == input.sym_sizes(), op, ": ", name, " size ", t.sym_sizes(),
                    " must be the same as input size ", input.sym_sizes());
}

Reduction check_reduction(const char* op, int64_t reduction) {
  TORCH_CHECK_VALUE(reduction >= 0 && reduction <= 2, op, ": reduction must be 0 (none), 1 (mean) or 2 (sum), got ",
                    reduction);
  return static_cast<Reduction>(reduction);
}

void check_grad(const char* op, const Tensor& grad, const Tensor& like, c10::SymIntArrayRef output_sizes) {
  check_floating(op, "grad", grad);
  check_same_device(op, "grad", grad, like);
  TORCH_CHECK(grad.sym_sizes() == output_sizes, op, ": grad of shape ", grad.sym_sizes(),
              " does not match the output's shape ", output_sizes);
}

double check_base(const char* op, const std::optional<double>& base) {
  if (!base) return 1.0;
  TORCH_CHECK_VALUE(*base > 0 && *base != 1 && std::isfinite(*base), op, ": base must be positive, finite and not 1, got ",
                    *base);
  return 1.0 / std::log(*base);
}

void check_positive(const char* op, const char* name, const Tensor& t) {
  if (!t.is_cpu()) return;
  TORCH_CHECK_VALUE(at::gt(t, 0).all().item<bool>(), op, ": ", name, " must be positive");  // NaN is not
}

}  // namespace fusedgan

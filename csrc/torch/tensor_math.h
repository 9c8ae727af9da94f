// csrc/math's formulas on tensors. An Expr is a tensor, or a number, with the primitive names
// the formulas use (arithmetic, comparisons, select, exp, log, lgamma, ...), so a formula
// template instantiated with it writes that formula as ATen ops. Autograd records those: they
// are the ops' differentiable backward (create_graph, double backward, torch.func), the same
// formulas as the kernels' rather than a second copy.
//
// Two primitives differ from the kernels' forms: the branch-free sigmoid and softplus through
// e = e^-|x| are smooth functions, but autograd would differentiate |x| at 0 as 0 and get their
// derivatives at x = 0 wrong; on tensors they are ATen's sigmoid and softplus.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <optional>

#include "../math/logistic.h"

namespace fusedgan::tensor_math {

class Expr {
 public:
  Expr() = default;
  Expr(double number) : number_(number) {}              // NOLINT: numbers in formulas, V(0.5)
  Expr(at::Tensor tensor) : tensor_(std::move(tensor)) {}  // NOLINT: tensors in
  bool is_number() const { return !tensor_.defined(); }
  double number() const { return number_; }
  const at::Tensor& tensor() const { return tensor_; }
  // As a tensor of like's dtype and device (a number becomes a 0-dim tensor).
  at::Tensor to_tensor(const at::Tensor& like) const {
    return is_number() ? at::scalar_tensor(number_, like.options()) : tensor_;
  }

 private:
  at::Tensor tensor_;
  double number_ = 0;
};

// The dtype the formulas compute in for an op's dtype: float for the 16-bit ones, as the
// kernels do (math/storage.h), so that constants such as BCE's 1e-12 guard and the ranges of
// exp and log are the kernels' too.
inline at::ScalarType computation_dtype(at::ScalarType dtype) {
  return dtype == at::kHalf || dtype == at::kBFloat16 ? at::kFloat : dtype;
}

// A tensor in the computation dtype of `dtype`, or 1 where there is none (an absent weight).
inline Expr computed_in(const std::optional<at::Tensor>& t, at::ScalarType dtype) {
  return t ? Expr(t->to(computation_dtype(dtype))) : Expr(1.0);
}

// op(a, b) on numbers, on tensors, or on one of each, in the tensor's dtype.
template <class Op>
Expr combine(const Expr& a, const Expr& b, const Op& op) {
  if (a.is_number() && b.is_number()) return op(a.number(), b.number());
  if (a.is_number()) return op(a.to_tensor(b.tensor()), b.tensor());
  if (b.is_number()) return op(a.tensor(), at::Scalar(b.number()));
  return op(a.tensor(), b.tensor());
}

inline Expr operator+(const Expr& a, const Expr& b) {
  return combine(a, b, [](const auto& x, const auto& y) { return x + y; });
}
inline Expr operator-(const Expr& a, const Expr& b) {
  return combine(a, b, [](const auto& x, const auto& y) { return x - y; });
}
inline Expr operator*(const Expr& a, const Expr& b) {
  return combine(a, b, [](const auto& x, const auto& y) { return x * y; });
}
inline Expr operator/(const Expr& a, const Expr& b) {
  return combine(a, b, [](const auto& x, const auto& y) { return x / y; });
}
inline Expr operator-(const Expr& a) { return a.is_number() ? Expr(-a.number()) : Expr(-a.tensor()); }

// A truth value per element (a bool tensor, with the options of the tensor compared), or one.
struct Mask {
  at::Tensor tensor;
  at::TensorOptions options;
  bool value = false;
};

template <class Op>
Mask compare(const Expr& a, const Expr& b, const Op& op) {
  if (a.is_number() && b.is_number()) return {at::Tensor(), {}, op(a.number(), b.number())};
  const at::Tensor& like = a.is_number() ? b.tensor() : a.tensor();
  return {combine(a, b, op).tensor(), like.options(), false};
}

inline Mask operator<(const Expr& a, const Expr& b) {
  return compare(a, b, [](const auto& x, const auto& y) { return x < y; });
}
inline Mask operator>(const Expr& a, const Expr& b) {
  return compare(a, b, [](const auto& x, const auto& y) { return x > y; });
}
inline Mask operator<=(const Expr& a, const Expr& b) {
  return compare(a, b, [](const auto& x, const auto& y) { return x <= y; });
}
inline Mask operator>=(const Expr& a, const Expr& b) {
  return compare(a, b, [](const auto& x, const auto& y) { return x >= y; });
}
inline Mask operator==(const Expr& a, const Expr& b) {
  return compare(a, b, [](const auto& x, const auto& y) { return x == y; });
}

// Both true; a known truth value decides without a tensor op.
inline Mask operator&(const Mask& a, const Mask& b) {
  if (!a.tensor.defined()) return a.value ? b : a;
  if (!b.tensor.defined()) return b.value ? a : b;
  return {a.tensor & b.tensor, a.options, false};
}

// Either true; a known truth value decides without a tensor op.
inline Mask operator|(const Mask& a, const Mask& b) {
  if (!a.tensor.defined()) return a.value ? a : b;
  if (!b.tensor.defined()) return b.value ? b : a;
  return {a.tensor | b.tensor, a.options, false};
}

inline Mask is_nan(const Expr& a) {
  if (a.is_number()) return {at::Tensor(), {}, std::isnan(a.number())};
  return {at::isnan(a.tensor()), a.tensor().options(), false};
}

inline Expr select(const Mask& m, const Expr& if_true, const Expr& if_false) {
  if (!m.tensor.defined()) return m.value ? if_true : if_false;
  const auto branch = [&](const Expr& e) {
    return e.is_number() ? at::scalar_tensor(e.number(), m.options) : e.tensor();
  };
  return at::where(m.tensor, branch(if_true), branch(if_false));
}

// f on a number in double, or on a tensor with ATen.
template <class OnNumber, class OnTensor>
Expr apply(const Expr& a, const OnNumber& on_number, const OnTensor& on_tensor) {
  return a.is_number() ? Expr(on_number(a.number())) : Expr(on_tensor(a.tensor()));
}

inline Expr exp(const Expr& a) {
  return apply(a, [](double v) { return std::exp(v); }, [](const at::Tensor& t) { return at::exp(t); });
}
inline Expr log(const Expr& a) {
  return apply(a, [](double v) { return std::log(v); }, [](const at::Tensor& t) { return at::log(t); });
}
inline Expr log1p(const Expr& a) {
  return apply(a, [](double v) { return std::log1p(v); }, [](const at::Tensor& t) { return at::log1p(t); });
}
inline Expr abs(const Expr& a) {
  return apply(a, [](double v) { return std::abs(v); }, [](const at::Tensor& t) { return at::abs(t); });
}
inline Expr lgamma(const Expr& a) {
  return apply(a, [](double v) { return std::lgamma(v); }, [](const at::Tensor& t) { return at::lgamma(t); });
}
inline Expr digamma(const Expr& a) {
  return apply(a, [](double v) { return double(math::digamma(v)); }, [](const at::Tensor& t) { return at::digamma(t); });
}
inline Expr i0e(const Expr& a) {
  return apply(a, [](double v) { return math::i0e(v); }, [](const at::Tensor& t) { return at::special_i0e(t); });
}
inline Expr i1e(const Expr& a) {
  return apply(a, [](double v) { return math::i1e(v); }, [](const at::Tensor& t) { return at::special_i1e(t); });
}
inline Expr sin(const Expr& a) {
  return apply(a, [](double v) { return std::sin(v); }, [](const at::Tensor& t) { return at::sin(t); });
}
inline Expr cos(const Expr& a) {
  return apply(a, [](double v) { return std::cos(v); }, [](const at::Tensor& t) { return at::cos(t); });
}
inline math::SinCos<Expr> sin_cos(const Expr& a) { return {sin(a), cos(a)}; }
// The narrow-domain forms of csrc/math/scalar.h, here with their plain definitions.
inline Expr exp_minus(const Expr& a) { return exp(-a); }
inline Expr log1p_unit(const Expr& a) { return log1p(a); }

// The smooth ones (see the top of this file).
inline Expr sigmoid_given(const Expr& x, const Expr&) {
  return apply(x, [](double v) { return 1 / (1 + std::exp(-v)); }, [](const at::Tensor& t) { return at::sigmoid(t); });
}
inline math::SoftplusPair<Expr> softplus_pair(const Expr& x) {
  const auto softplus = [](const Expr& v) {
    return apply(v, [](double n) { return std::log1p(std::exp(-std::abs(n))) + std::max(n, 0.0); },
                 [](const at::Tensor& t) { return at::softplus(t); });
  };
  return {softplus(x), softplus(-x)};
}

}  // namespace fusedgan::tensor_math

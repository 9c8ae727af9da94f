// The entropy along a dim as torch operators, in two forms: fusedgan::entropy (of
// probabilities) and fusedgan::entropy_with_logits (of the softmax), each with a _backward op.
// The kernels run over rows: the dim moved last and made contiguous. The forms differ in name,
// argument name and kernels, which a form struct states; every function below is written once
// for both. (The binary form is an elementwise loss: binary_entropy.cpp.) The softmax form has
// an _and_grad op too: the entropies and their gradient at grad = 1 from one pass, which its
// forward keeps for the backward.
#include <torch/library.h>

#include "../math/entropy.h"
#include "autocast.h"
#include "autograd.h"
#include "checks.h"
#include "device.h"
#include "dispatch.h"
#include "layout.h"
#include "output.h"
#include "tensor_math.h"

namespace fusedgan {
namespace {

using torch::autograd::variable_list;
using OptionalDouble = std::optional<double>;

struct OfProbabilities {
  static constexpr const char* kName = "entropy";
  static constexpr const char* kInput = "probs";
  static constexpr const char* kNode = "EntropyBackward";
  static constexpr OpName kForwardOp = "fusedgan::entropy";
  static constexpr OpName kBackwardOp = "fusedgan::_entropy_backward";
  static constexpr auto forward_kernel = [](const auto& table) { return table.entropy; };
};

struct OfLogits {
  static constexpr const char* kName = "entropy_with_logits";
  static constexpr const char* kInput = "logits";
  static constexpr const char* kNode = "EntropyWithLogitsBackward";
  static constexpr OpName kForwardOp = "fusedgan::entropy_with_logits";
  static constexpr OpName kBackwardOp = "fusedgan::_entropy_with_logits_backward";
  static constexpr OpName kAndGradOp = "fusedgan::_entropy_with_logits_and_grad";
  static constexpr auto forward_kernel = [](const auto& table) { return table.entropy_with_logits; };
};

// ---- checks

// dim wrapped; a 0-dim input is one row of one element.
template <class Form>
int64_t checked_dim(const Tensor& input, int64_t dim) {
  const int64_t rank = std::max<int64_t>(input.dim(), 1);
  TORCH_CHECK_VALUE(dim >= -rank && dim < rank, Form::kName, ": dim must be in [", -rank, ", ", rank - 1,
                    "] for an input of ", input.dim(), " dimensions, got ", dim);
  return dim < 0 ? dim + rank : dim;
}

// Checks the arguments; returns the unit (1 / log(base)).
template <class Form>
double check_arguments(const Tensor& input, int64_t dim, const OptionalDouble& base) {
  check_floating(Form::kName, Form::kInput, input);
  checked_dim<Form>(input, dim);
  return check_base(Form::kName, base);
}

// The input's sizes without dim.
template <class Form>
c10::SymDimVector output_sizes(const Tensor& input, int64_t dim) {
  c10::SymDimVector sizes(input.sym_sizes().begin(), input.sym_sizes().end());
  if (input.dim() > 0) sizes.erase(sizes.begin() + checked_dim<Form>(input, dim));
  return sizes;
}

// ---- the input as the kernels see it: dim moved last, rows contiguous

struct Rows {
  Tensor rows;  // (..., length), contiguous
  RowArgs args;
};

template <class Form>
Rows rows_of(const Tensor& input, int64_t dim, double unit) {
  const Tensor moved = input.dim() == 0 ? input.reshape({1}) : input.movedim(checked_dim<Form>(input, dim), -1);
  Tensor rows = moved.contiguous();
  const int64_t length = rows.size(-1);
  const int64_t count = c10::multiply_integers(rows.sizes().begin(), rows.sizes().end() - 1);
  return {rows, RowArgs{kernel_dtype(rows.scalar_type()), count, length, rows.data_ptr(), unit}};
}

// ---- CPU and CUDA

template <class Form>
Tensor forward(const Tensor& input, int64_t dim, OptionalDouble base) {
  const Rows view = rows_of<Form>(input, dim, check_arguments<Form>(input, dim, base));
  Tensor out = at::empty(C10_AS_INTARRAYREF_SLOW(output_sizes<Form>(input, dim)), input.options());
  const bool in_domain = on_device(input, [&](const auto& kernels, auto... launch) {
    if constexpr (std::is_same_v<Form, OfProbabilities>) {
      return Form::forward_kernel(kernels)(view.args, out.data_ptr(), launch...);
    } else {
      Form::forward_kernel(kernels)(view.args, out.data_ptr(), launch...);
      return true;
    }
  });
  TORCH_CHECK_VALUE(in_domain, Form::kName, ": ", Form::kInput, " must not be negative or NaN");
  return out;
}

// The gradient for an incoming one per row (grad_rows), in the input's layout; for the softmax
// form also the entropies into `value` where it is defined.
template <class Form>
Tensor gradient(const Tensor& input, int64_t dim, const Rows& view, const Tensor& grad_rows, const Tensor& value) {
  Tensor grad_rows_input = new_output(view.rows.sizes(), view.rows.options());
  on_device(input, [&](const auto& kernels, auto... launch) {
    if constexpr (std::is_same_v<Form, OfLogits>) {
      kernels.entropy_with_logits_backward(view.args, grad_rows.data_ptr(), grad_rows_input.data_ptr(),
                                           value.defined() ? value.data_ptr() : nullptr, launch...);
    } else {
      kernels.entropy_backward(view.args, grad_rows.data_ptr(), grad_rows_input.data_ptr(), launch...);
    }
  });
  if (input.dim() == 0) return grad_rows_input.reshape({});
  return grad_rows_input.movedim(-1, checked_dim<Form>(input, dim)).contiguous();
}

template <class Form>
Tensor backward(const Tensor& grad, const Tensor& input, int64_t dim, OptionalDouble base) {
  const Rows view = rows_of<Form>(input, dim, check_arguments<Form>(input, dim, base));
  check_grad(Form::kName, grad, input, output_sizes<Form>(input, dim));
  const Tensor grad_rows = cast(grad, input.scalar_type(), input.device())->contiguous();
  return gradient<Form>(input, dim, view, grad_rows, Tensor());
}

std::tuple<Tensor, Tensor> and_grad(const Tensor& logits, int64_t dim, OptionalDouble base) {
  using Form = OfLogits;
  const Rows view = rows_of<Form>(logits, dim, check_arguments<Form>(logits, dim, base));
  Tensor entropy = at::empty(C10_AS_INTARRAYREF_SLOW(output_sizes<Form>(logits, dim)), logits.options());
  const Tensor ones = at::ones({view.args.rows}, logits.options());
  Tensor grad = gradient<Form>(logits, dim, view, ones, entropy);
  return {entropy, grad};
}

// ---- Meta

template <class Form>
Tensor forward_meta(const Tensor& input, int64_t dim, OptionalDouble base) {
  check_arguments<Form>(input, dim, base);
  return at::empty_symint(output_sizes<Form>(input, dim), input.options());
}

template <class Form>
Tensor backward_meta(const Tensor& grad, const Tensor& input, int64_t dim, OptionalDouble base) {
  check_arguments<Form>(input, dim, base);
  check_grad(Form::kName, grad, input, output_sizes<Form>(input, dim));
  return at::empty_symint(input.sym_sizes(), input.options());
}

std::tuple<Tensor, Tensor> and_grad_meta(const Tensor& logits, int64_t dim, OptionalDouble base) {
  return {forward_meta<OfLogits>(logits, dim, base), at::empty_symint(logits.sym_sizes(), logits.options())};
}

// ---- calls through the dispatcher

template <class Form>
Tensor call_forward(const Tensor& input, int64_t dim, const OptionalDouble& base) {
  return call_op<Form::kForwardOp, Tensor>(input, dim, base);
}

template <class Form>
Tensor call_backward(const Tensor& grad, const Tensor& input, int64_t dim, const OptionalDouble& base) {
  return call_op<Form::kBackwardOp, Tensor>(grad, input, dim, base);
}

std::tuple<Tensor, Tensor> call_and_grad(const Tensor& logits, int64_t dim, const OptionalDouble& base) {
  return call_op<OfLogits::kAndGradOp, std::tuple<Tensor, Tensor>>(logits, dim, base);
}

// ---- Autograd

// The gradient in ATen ops (differentiable again, for create_graph), on the formulas of
// csrc/math/entropy.h: -(log q + 1), and -p (log p + H) for the softmax; times the unit.
template <class Form>
Tensor differentiable_backward(const Tensor& grad, const Tensor& input, int64_t dim, double unit) {
  using tensor_math::Expr;
  const auto compute = tensor_math::computation_dtype(input.scalar_type());
  const bool scalar = input.dim() == 0;
  const int64_t wrapped = checked_dim<Form>(input, dim);
  const Tensor g = (scalar ? grad : grad.unsqueeze(wrapped)).to(compute) * unit;
  Tensor d;
  if constexpr (std::is_same_v<Form, OfProbabilities>) {
    d = math::entr_grad(Expr(input.to(compute))).to_tensor(input);
  } else {
    const int64_t along = scalar ? 0 : wrapped;
    const Tensor log_p = at::log_softmax((scalar ? input.reshape({1}) : input).to(compute), along);
    const Tensor p = at::exp(log_p);
    const Tensor entropy = -at::where(p > 0, p * log_p, at::zeros_like(p)).sum(along, /*keepdim=*/true);
    d = math::entropy_with_logits_grad(Expr(p), Expr(log_p + entropy)).to_tensor(p);
    if (scalar) d = d.reshape({});
  }
  return (g * d).to(input.scalar_type());
}

template <class Form>
Tensor forward_autograd(const Tensor& input, int64_t dim, OptionalDouble base) {
  Tensor entropy;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    // The softmax form computes its gradient in the forward pass and keeps it, unless a
    // transform would not use it; in float and double, where the backward kernels too round
    // the gradient at grad = 1 to the dtype before scaling it, so that both give the same bits.
    std::vector<Tensor> kept;
    if constexpr (std::is_same_v<Form, OfLogits>) {
      const bool rounds_once = input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble;
      if (records_grad(input) && rounds_once && !transformed(input) && !tangent_of(input).defined()) {
        kept.resize(1);
        std::tie(entropy, kept[0]) = call_and_grad(input, dim, base);
      }
    }
    if (!entropy.defined()) entropy = call_forward<Form>(input, dim, base);
    if (records_grad(input)) {
      const std::optional<int64_t> reduced = input.dim() == 0 ? std::nullopt : std::optional(checked_dim<Form>(input, dim));
      record_backward(
          entropy, Form::kNode, {input}, std::move(kept), {input},
          [dim, base](const variable_list& saved, const Tensor& grad, const std::vector<bool>&) {
            return variable_list{call_backward<Form>(grad, saved[0], dim, base)};
          },
          reduced);
    }
  }
  if (const Tensor t = tangent_of(input); t.defined()) {  // the derivative at the primal times t, over dim
    const Tensor primal = primal_of(input);
    const double unit = check_arguments<Form>(primal, dim, base);
    const Tensor terms = differentiable_backward<Form>(at::ones({}, t.options()).expand_symint(entropy.sym_sizes()),
                                                       primal, dim, unit) * t;
    set_tangent(entropy, input.dim() == 0 ? terms : terms.sum(checked_dim<Form>(input, dim)));
  }
  return entropy;
}

// Where a graph must be recorded or a tangent carried, the gradient is the formula's in ATen ops.
template <class Form>
Tensor backward_autograd(const Tensor& grad, const Tensor& input, int64_t dim, OptionalDouble base) {
  if (!records_grad(grad, input) && !has_tangents(grad, input)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward<Form>(grad, input, dim, base);
  }
  const double unit = check_arguments<Form>(input, dim, base);
  check_grad(Form::kName, grad, input, output_sizes<Form>(input, dim));
  return differentiable_backward<Form>(grad, input, dim, unit);
}

// The _and_grad op is the first-order pass of the entropy's autograd, not differentiable itself.
std::tuple<Tensor, Tensor> and_grad_autograd(const Tensor& logits, int64_t dim, OptionalDouble base) {
  check_first_order(records_grad(logits) || has_tangents(logits), "_entropy_with_logits_and_grad", "entropy_with_logits",
                    "value");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_and_grad(logits, dim, base);
}

void register_device_kernels(torch::Library& m) {
  m.impl("entropy", forward<OfProbabilities>);
  m.impl("_entropy_backward", backward<OfProbabilities>);
  m.impl("entropy_with_logits", forward<OfLogits>);
  m.impl("_entropy_with_logits_backward", backward<OfLogits>);
  m.impl("_entropy_with_logits_and_grad", and_grad);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("entropy(Tensor probs, int dim=-1, float? base=None) -> Tensor");
  m.def("_entropy_backward(Tensor grad, Tensor probs, int dim, float? base) -> Tensor");
  m.def("entropy_with_logits(Tensor logits, int dim=-1, float? base=None) -> Tensor");
  m.def("_entropy_with_logits_backward(Tensor grad, Tensor logits, int dim, float? base) -> Tensor");
  m.def("_entropy_with_logits_and_grad(Tensor logits, int dim, float? base) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("entropy", forward_meta<OfProbabilities>);
  m.impl("_entropy_backward", backward_meta<OfProbabilities>);
  m.impl("entropy_with_logits", forward_meta<OfLogits>);
  m.impl("_entropy_with_logits_backward", backward_meta<OfLogits>);
  m.impl("_entropy_with_logits_and_grad", and_grad_meta);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("entropy", forward_autograd<OfProbabilities>);
  m.impl("_entropy_backward", backward_autograd<OfProbabilities>);
  m.impl("entropy_with_logits", forward_autograd<OfLogits>);
  m.impl("_entropy_with_logits_backward", backward_autograd<OfLogits>);
  m.impl("_entropy_with_logits_and_grad", and_grad_autograd);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"entropy", "entropy_with_logits"}); }

}  // namespace fusedgan

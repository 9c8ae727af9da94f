// Entropy as torch operators: fusedgan::entropy (of probabilities along a dim),
// fusedgan::entropy_with_logits (of the softmax along a dim) and
// fusedgan::binary_entropy_with_logits (of sigmoids, elementwise, reduced), each with a
// _backward op; CPU, CUDA and Meta kernels, autograd in C++. The three share one signature,
// (input, int, float? base) with the int a dim or a reduction, and one autograd class.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <cmath>

#include "autograd_support.h"
#include "common.h"

namespace fusedgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OptionalDouble = std::optional<double>;

enum class Form { Probabilities, Logits, Binary };

const char* op_name(Form form) {
  switch (form) {
    case Form::Probabilities:
      return "entropy";
    case Form::Logits:
      return "entropy_with_logits";
    case Form::Binary:
      break;
  }
  return "binary_entropy_with_logits";
}

// ---- checks

// 1 / log(base): the unit's scale (nats without a base).
double unit_scale(Form form, const OptionalDouble& base) {
  if (!base) return 1.0;
  TORCH_CHECK_VALUE(*base > 0 && *base != 1 && std::isfinite(*base), op_name(form),
                    ": base must be positive, finite and not 1, got ", *base);
  return 1.0 / std::log(*base);
}

// The dim of a row form, wrapped; a 0-dim input is one row of one element.
int64_t checked_dim(Form form, const Tensor& input, int64_t dim) {
  const int64_t rank = std::max<int64_t>(input.dim(), 1);
  TORCH_CHECK_VALUE(dim >= -rank && dim < rank, op_name(form), ": dim must be in [", -rank, ", ", rank - 1,
                    "] for an input of ", input.dim(), " dimensions, got ", dim);
  return dim < 0 ? dim + rank : dim;
}

void check_input(Form form, const Tensor& input, int64_t dim_or_reduction, const OptionalDouble& base) {
  check_floating(op_name(form), form == Form::Probabilities ? "probs" : "logits", input);
  unit_scale(form, base);
  if (form == Form::Binary) {
    check_reduction(op_name(form), dim_or_reduction);
  } else {
    checked_dim(form, input, dim_or_reduction);
  }
}

c10::SymDimVector output_sizes(Form form, const Tensor& input, int64_t dim_or_reduction) {
  if (form == Form::Binary) {
    if (dim_or_reduction != int64_t(Reduction::None)) return {};
    return c10::SymDimVector(input.sym_sizes().begin(), input.sym_sizes().end());
  }
  c10::SymDimVector sizes(input.sym_sizes().begin(), input.sym_sizes().end());
  if (input.dim() > 0) sizes.erase(sizes.begin() + checked_dim(form, input, dim_or_reduction));
  return sizes;
}

// ---- the row forms as the kernels see them: dim moved last, rows contiguous

struct RowsView {
  Tensor rows;  // (..., length) contiguous
  RowArgs args;
};

RowsView rows_of(Form form, const Tensor& input, int64_t dim, const OptionalDouble& base) {
  const Tensor moved = input.dim() == 0 ? input.reshape({1}) : input.movedim(checked_dim(form, input, dim), -1);
  Tensor rows = moved.contiguous();
  const int64_t length = rows.size(-1);
  const int64_t row_count = c10::multiply_integers(rows.sizes().begin(), rows.sizes().end() - 1);
  return {rows, RowArgs{kernel_dtype(rows.scalar_type()), row_count, length,
                        rows.data_ptr(), unit_scale(form, base)}};
}

// ---- CPU and CUDA

Tensor forward(Form form, const Tensor& input, int64_t dim_or_reduction, const OptionalDouble& base) {
  check_input(form, input, dim_or_reduction, base);
  if (form == Form::Binary) {
    const auto reduction = static_cast<Reduction>(dim_or_reduction);
    const OptionalTensor logits(input);
    const Plan plan = fusedgan::plan(input.sizes(), {&logits});
    const UnaryArgs args{kernel_dtype(input.scalar_type()), plan.grid, plan.operands[0], unit_scale(form, base)};
    Tensor out = reduction == Reduction::None ? new_output(input.sizes(), input.options()) : at::empty({}, input.options());
    on_device(
        input, [&] { cpu::kernels().binary_entropy_with_logits(args, reduction, out.data_ptr()); },
        [&](cuda::Launch launch) { cuda::binary_entropy_with_logits(args, reduction, out.data_ptr(), launch); });
    return out;
  }
  const RowsView view = rows_of(form, input, dim_or_reduction, base);
  Tensor out = at::empty(C10_AS_INTARRAYREF_SLOW(output_sizes(form, input, dim_or_reduction)), input.options());
  on_device(
      input,
      [&] {
        if (form == Form::Logits) return cpu::kernels().entropy_with_logits(view.args, out.data_ptr());
        TORCH_CHECK_VALUE(cpu::kernels().entropy(view.args, out.data_ptr()),
                          "entropy: probs must not be negative or NaN");
      },
      [&](cuda::Launch launch) {
        (form == Form::Logits ? cuda::entropy_with_logits : cuda::entropy)(view.args, out.data_ptr(), launch);
      });
  return out;
}

Tensor backward(Form form, const Tensor& grad, const Tensor& input, int64_t dim_or_reduction,
                const OptionalDouble& base) {
  check_input(form, input, dim_or_reduction, base);
  const char* op = op_name(form);
  check_floating(op, "grad", grad);
  check_same_device(op, "grad", grad, input);
  const auto expected = output_sizes(form, input, dim_or_reduction);
  TORCH_CHECK(grad.sym_sizes() == c10::SymIntArrayRef(expected), op, ": grad of shape ", grad.sym_sizes(),
              " does not match the output's shape ", c10::SymIntArrayRef(expected));
  const OptionalTensor grad_cast = cast(grad, input.scalar_type());
  if (form == Form::Binary) {
    const OptionalTensor logits(input);
    const Plan plan = fusedgan::plan(input.sizes(), {&logits, &grad_cast});
    const UnaryArgs args{kernel_dtype(input.scalar_type()), plan.grid, plan.operands[0], unit_scale(form, base)};
    const double grad_scale = reduction_scale(plan.grid, static_cast<Reduction>(dim_or_reduction));
    Tensor grad_input = new_output(input.sizes(), input.options());
    if (input.numel() > 0) {
      on_device(
          input,
          [&] {
            cpu::kernels().binary_entropy_with_logits_backward(args, plan.operands[1], grad_scale, grad_input.data_ptr());
          },
          [&](cuda::Launch launch) {
            cuda::binary_entropy_with_logits_backward(args, plan.operands[1], grad_scale, grad_input.data_ptr(), launch);
          });
    }
    return grad_input;
  }
  const RowsView view = rows_of(form, input, dim_or_reduction, base);
  const Tensor grad_rows = grad_cast->contiguous();
  Tensor grad_rows_input = at::empty_like(view.rows);
  on_device(
      input,
      [&] {
        (form == Form::Logits ? cpu::kernels().entropy_with_logits_backward : cpu::kernels().entropy_backward)(
            view.args, grad_rows.data_ptr(), grad_rows_input.data_ptr());
      },
      [&](cuda::Launch launch) {
        (form == Form::Logits ? cuda::entropy_with_logits_backward : cuda::entropy_backward)(
            view.args, grad_rows.data_ptr(), grad_rows_input.data_ptr(), launch);
      });
  if (input.dim() == 0) return grad_rows_input.reshape({});
  return grad_rows_input.movedim(-1, checked_dim(form, input, dim_or_reduction)).contiguous();
}

// ---- Meta

Tensor forward_meta(Form form, const Tensor& input, int64_t dim_or_reduction, const OptionalDouble& base) {
  check_input(form, input, dim_or_reduction, base);
  return at::empty_symint(output_sizes(form, input, dim_or_reduction), input.options());
}

Tensor backward_meta(Form form, const Tensor& grad, const Tensor& input, int64_t dim_or_reduction,
                     const OptionalDouble& base) {
  check_input(form, input, dim_or_reduction, base);
  check_floating(op_name(form), "grad", grad);
  return at::empty_symint(input.sym_sizes(), input.options());
}

// ---- calls through the dispatcher, so that tracing sees them

const char* backward_name(Form form) {
  switch (form) {
    case Form::Probabilities:
      return "fusedgan::_entropy_backward";
    case Form::Logits:
      return "fusedgan::_entropy_with_logits_backward";
    case Form::Binary:
      break;
  }
  return "fusedgan::_binary_entropy_with_logits_backward";
}

Tensor call_forward(Form form, const Tensor& input, int64_t dim_or_reduction, const OptionalDouble& base) {
  using Signature = Tensor(const Tensor&, int64_t, OptionalDouble);
  static const auto find = [](Form f) {
    return c10::Dispatcher::singleton().findSchemaOrThrow((std::string("fusedgan::") + op_name(f)).c_str(), "")
        .typed<Signature>();
  };
  static const c10::TypedOperatorHandle<Signature> ops[] = {find(Form::Probabilities), find(Form::Logits),
                                                            find(Form::Binary)};
  return ops[int(form)].call(input, dim_or_reduction, base);
}

Tensor call_backward(Form form, const Tensor& grad, const Tensor& input, int64_t dim_or_reduction,
                     const OptionalDouble& base) {
  using Signature = Tensor(const Tensor&, const Tensor&, int64_t, OptionalDouble);
  static const auto find = [](Form f) {
    return c10::Dispatcher::singleton().findSchemaOrThrow(backward_name(f), "").typed<Signature>();
  };
  static const c10::TypedOperatorHandle<Signature> ops[] = {find(Form::Probabilities), find(Form::Logits),
                                                            find(Form::Binary)};
  return ops[int(form)].call(grad, input, dim_or_reduction, base);
}

// ---- Autograd

// The first derivatives in ATen ops, differentiable again (for create_graph):
//   probabilities: -(log q + 1);  logits: -p (log p + H) with 0 where p = 0;
//   binary: -x sigmoid(x) sigmoid(-x) (times 1/n for the mean). All times 1/log(base).
Tensor differentiable_backward(Form form, const Tensor& grad, const Tensor& input, int64_t dim_or_reduction,
                               const OptionalDouble& base) {
  const double scale = unit_scale(form, base);
  if (form == Form::Binary) {
    double mean_scale = 1.0;
    if (dim_or_reduction == int64_t(Reduction::Mean)) mean_scale = 1.0 / double(input.numel());
    return grad * (-scale * mean_scale) * input * at::sigmoid(input) * at::sigmoid(-input);
  }
  const bool scalar = input.dim() == 0;
  const int64_t dim = checked_dim(form, input, dim_or_reduction);
  const Tensor g = scalar ? grad : grad.unsqueeze(dim);
  if (form == Form::Probabilities) return g * (-scale) * (at::log(input) + 1);
  const Tensor log_p = at::log_softmax(scalar ? input.reshape({1}) : input, scalar ? 0 : dim);
  const Tensor p = at::exp(log_p);
  const Tensor p_log_p = at::where(p > 0, p * log_p, at::zeros_like(p));
  const Tensor h = -p_log_p.sum(scalar ? 0 : dim, /*keepdim=*/true);
  const Tensor d = at::where(p > 0, p * (log_p + h), at::zeros_like(p));
  return g * (-scale) * (scalar ? d.reshape({}) : d);
}

class EntropyFunction : public torch::autograd::Function<EntropyFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, Form form, const Tensor& input, int64_t dim_or_reduction,
                        const OptionalDouble& base) {
    ctx->save_for_backward({input});
    ctx->saved_data["form"] = int64_t(form);
    ctx->saved_data["dim_or_reduction"] = dim_or_reduction;
    ctx->saved_data["base"] = base ? c10::IValue(*base) : c10::IValue();
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(form, input, dim_or_reduction, base);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto form = Form(ctx->saved_data["form"].toInt());
    const int64_t dim_or_reduction = ctx->saved_data["dim_or_reduction"].toInt();
    const auto& base_value = ctx->saved_data["base"];
    const OptionalDouble base = base_value.isNone() ? std::nullopt : OptionalDouble(base_value.toDouble());
    const Tensor input = ctx->get_saved_variables()[0];
    Tensor grad_input = at::GradMode::is_enabled()
                            ? differentiable_backward(form, grads[0], input, dim_or_reduction, base)
                            : call_backward(form, grads[0], input, dim_or_reduction, base);
    return {Tensor(), grad_input, Tensor(), Tensor()};
  }
};

Tensor forward_autograd(Form form, const Tensor& input, int64_t dim_or_reduction, const OptionalDouble& base) {
  if (records_grad(input)) {
    return EntropyFunction::apply(form, input, dim_or_reduction, base);
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_forward(form, input, dim_or_reduction, base);
}

// The _backward ops' own derivative, for create_graph through them when called directly.
Tensor backward_autograd(Form form, const Tensor& grad, const Tensor& input, int64_t dim_or_reduction,
                         const OptionalDouble& base) {
  if (records_grad(grad, input)) {
    return differentiable_backward(form, grad, input, dim_or_reduction, base);
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_backward(form, grad, input, dim_or_reduction, base);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("entropy(Tensor probs, int dim=-1, float? base=None) -> Tensor");
  m.def("_entropy_backward(Tensor grad, Tensor probs, int dim, float? base) -> Tensor");
  m.def("entropy_with_logits(Tensor logits, int dim=-1, float? base=None) -> Tensor");
  m.def("_entropy_with_logits_backward(Tensor grad, Tensor logits, int dim, float? base) -> Tensor");
  m.def("binary_entropy_with_logits(Tensor logits, int reduction=0, float? base=None) -> Tensor");
  m.def("_binary_entropy_with_logits_backward(Tensor grad, Tensor logits, int reduction, float? base) -> Tensor");
}

// The six ops' kernels for one dispatch key, from implementations taking (Form, ...).
#define FUSEDGAN_REGISTER_ENTROPY_FORM(m, NAME, FORM, FORWARD, BACKWARD)                                          \
  m.impl(NAME, [](const Tensor& input, int64_t dim_or_reduction, OptionalDouble base) {                         \
    return FORWARD(FORM, input, dim_or_reduction, base);                                                        \
  });                                                                                                           \
  m.impl("_" NAME "_backward", [](const Tensor& grad, const Tensor& input, int64_t dim_or_reduction,           \
                                   OptionalDouble base) { return BACKWARD(FORM, grad, input, dim_or_reduction, base); })
#define FUSEDGAN_REGISTER_ENTROPY(m, FORWARD, BACKWARD)                                             \
  FUSEDGAN_REGISTER_ENTROPY_FORM(m, "entropy", Form::Probabilities, FORWARD, BACKWARD);             \
  FUSEDGAN_REGISTER_ENTROPY_FORM(m, "entropy_with_logits", Form::Logits, FORWARD, BACKWARD);        \
  FUSEDGAN_REGISTER_ENTROPY_FORM(m, "binary_entropy_with_logits", Form::Binary, FORWARD, BACKWARD)

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { FUSEDGAN_REGISTER_ENTROPY(m, forward, backward); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { FUSEDGAN_REGISTER_ENTROPY(m, forward, backward); }
TORCH_LIBRARY_IMPL(fusedgan, Meta, m) { FUSEDGAN_REGISTER_ENTROPY(m, forward_meta, backward_meta); }
TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) { FUSEDGAN_REGISTER_ENTROPY(m, forward_autograd, backward_autograd); }

}  // namespace fusedgan

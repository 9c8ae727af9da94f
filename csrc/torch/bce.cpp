// Binary cross-entropy as torch operators: fusedgan::binary_cross_entropy_with_logits and
// fusedgan::binary_cross_entropy, each with a _backward op and an _and_grad op (the reduced
// loss with its input gradient, see autograd_support.h); CPU, CUDA and Meta kernels; autograd
// in C++ (cheaper per call than a Python-registered formula), with double backward
// through ATen.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "common.h"
#include "autograd_support.h"

namespace fusedgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using OutputMask = std::array<bool, 2>;

// The two forms differ in name, pos_weight, dtype rule and kernels; the glue is shared.
enum class Form { Logits, Probabilities };

const char* op_name(Form form) {
  return form == Form::Logits ? "binary_cross_entropy_with_logits" : "binary_cross_entropy";
}

// Checks the arguments and returns the dtype the op computes in.
at::ScalarType check_arguments(Form form, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                               const OptionalTensor& pos_weight, int64_t reduction) {
  const char* op = op_name(form);
  check_floating(op, "input", input);
  check_floating(op, "target", target);
  check_same_device(op, "target", target, input);
  check_same_shape(op, "target", target, input);
  check_broadcastable(op, "weight", weight, input);
  check_broadcastable(op, "pos_weight", pos_weight, input);
  check_reduction(op, reduction);
  if (form == Form::Logits) return at::promote_types(input.scalar_type(), target.scalar_type());
  TORCH_CHECK(target.scalar_type() == input.scalar_type(), op, ": expected target of dtype ", input.scalar_type(),
              " like input, got ", target.scalar_type());
  return input.scalar_type();
}

void check_grad(Form form, const Tensor& grad, const Tensor& input, int64_t reduction) {
  const char* op = op_name(form);
  check_floating(op, "grad", grad);
  check_same_device(op, "grad", grad, input);
  if (reduction == int64_t(Reduction::None)) {
    TORCH_CHECK(at::is_expandable_to(grad.sym_sizes(), input.sym_sizes()), op, ": grad of shape ", grad.sym_sizes(),
                " cannot be broadcast to the input's shape ", input.sym_sizes());
  } else {
    TORCH_CHECK(grad.sym_numel() == 1, op, ": grad of a reduced loss must have one element, got shape ",
                grad.sym_sizes());
  }
}

// The tensors of a call cast to the compute dtype, and the kernels' view of them.
struct Call {
  at::ScalarType dtype;
  OptionalTensor input, target, weight, pos_weight, grad;
  Plan plan;

  Call(at::ScalarType dtype, const Tensor& input_, const Tensor& target_, const OptionalTensor& weight_,
       const OptionalTensor& pos_weight_, const OptionalTensor& grad_ = std::nullopt)
      : dtype(dtype),
        input(cast(input_, dtype)),
        target(cast(target_, dtype)),
        weight(cast(weight_, dtype)),
        pos_weight(cast(pos_weight_, dtype)),
        grad(cast(grad_, dtype)),
        plan(fusedgan::plan(input_.sizes(), {&input, &target, &weight, &pos_weight, &grad})) {}

  BceArgs args() const {
    const auto& o = plan.operands;
    return BceArgs{kernel_dtype(dtype), plan.grid, o[0], o[1], o[2], o[3]};
  }
  at::TensorOptions options() const { return input->options().dtype(dtype); }
};

void check_reduced(Form form, int64_t reduction) {
  TORCH_CHECK_VALUE(reduction != int64_t(Reduction::None), "_", op_name(form),
                    "_and_grad: reduction must be 1 (mean) or 2 (sum), got 0 (none)");
}

// The loss and, when with_grad (reduced losses only), its input gradient at grad = 1.
std::tuple<Tensor, Tensor> forward_with_grad(Form form, const Tensor& input, const Tensor& target,
                                             const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                             int64_t reduction_code, bool with_grad) {
  const auto dtype = check_arguments(form, input, target, weight, pos_weight, reduction_code);
  const auto reduction = static_cast<Reduction>(reduction_code);
  const Call call(dtype, input, target, weight, pos_weight);
  Tensor out = reduction == Reduction::None ? new_output(input.sizes(), call.options()) : at::empty({}, call.options());
  Tensor grad_input = with_grad ? new_output(input.sizes(), call.options()) : Tensor();
  void* grad_data = with_grad ? grad_input.data_ptr() : nullptr;
  const BceArgs args = call.args();
  on_device(
      input,
      [&] {
        if (form == Form::Logits) {
          return cpu::kernels().bce_with_logits_forward(args, reduction, out.data_ptr(), grad_data);
        }
        TORCH_CHECK(cpu::kernels().bce_forward(args, reduction, out.data_ptr(), grad_data), op_name(form),
                    ": all elements of input should be between 0 and 1 (input holds probabilities; "
                    "binary_cross_entropy_with_logits takes logits)");
      },
      [&](cuda::Launch launch) {
        (form == Form::Logits ? cuda::bce_with_logits_forward : cuda::bce_forward)(args, reduction, out.data_ptr(),
                                                                                 grad_data, launch);
      });
  return {out, grad_input};
}

Tensor forward(Form form, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
               const OptionalTensor& pos_weight, int64_t reduction) {
  return std::get<0>(forward_with_grad(form, input, target, weight, pos_weight, reduction, false));
}

std::tuple<Tensor, Tensor> and_grad(Form form, const Tensor& input, const Tensor& target,
                                    const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                    int64_t reduction) {
  check_reduced(form, reduction);
  return forward_with_grad(form, input, target, weight, pos_weight, reduction, true);
}

std::tuple<Tensor, Tensor> backward(Form form, const Tensor& grad, const Tensor& input, const Tensor& target,
                                    const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                    int64_t reduction, OutputMask output_mask) {
  const auto dtype = check_arguments(form, input, target, weight, pos_weight, reduction);
  check_grad(form, grad, input, reduction);
  const Call call(dtype, input, target, weight, pos_weight, grad);
  const auto gradient = [&](bool wanted) { return wanted ? new_output(input.sizes(), call.options()) : Tensor(); };
  Tensor grad_input = gradient(output_mask[0]);
  Tensor grad_target = gradient(output_mask[1]);
  const BceBackwardArgs args{call.args(), call.plan.operands[4],
                             reduction_scale(call.plan.grid, static_cast<Reduction>(reduction)),
                             grad_input.defined() ? grad_input.data_ptr() : nullptr,
                             grad_target.defined() ? grad_target.data_ptr() : nullptr};
  if (input.numel() > 0) {
    on_device(
        input,
        [&] { (form == Form::Logits ? cpu::kernels().bce_with_logits_backward : cpu::kernels().bce_backward)(args); },
        [&](cuda::Launch launch) {
          (form == Form::Logits ? cuda::bce_with_logits_backward : cuda::bce_backward)(args, launch);
        });
  }
  return {grad_input, grad_target};
}

// ---- Meta: shapes and dtypes only, symbolic sizes welcome.

Tensor forward_meta(Form form, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                    const OptionalTensor& pos_weight, int64_t reduction) {
  const auto options = input.options().dtype(check_arguments(form, input, target, weight, pos_weight, reduction));
  return reduction == int64_t(Reduction::None) ? at::empty_symint(input.sym_sizes(), options)
                                                 : at::empty({}, options);
}

std::tuple<Tensor, Tensor> and_grad_meta(Form form, const Tensor& input, const Tensor& target,
                                         const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                         int64_t reduction) {
  check_reduced(form, reduction);
  const auto options = input.options().dtype(check_arguments(form, input, target, weight, pos_weight, reduction));
  return {at::empty({}, options), at::empty_symint(input.sym_sizes(), options)};
}

std::tuple<Tensor, Tensor> backward_meta(Form form, const Tensor& grad, const Tensor& input, const Tensor& target,
                                         const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                         int64_t reduction, OutputMask output_mask) {
  const auto options = input.options().dtype(check_arguments(form, input, target, weight, pos_weight, reduction));
  check_grad(form, grad, input, reduction);
  const auto gradient = [&](bool wanted) { return wanted ? at::empty_symint(input.sym_sizes(), options) : Tensor(); };
  return {gradient(output_mask[0]), gradient(output_mask[1])};
}

// ---- Calls through the dispatcher, so that tracing (torch.compile) sees the ops.

enum class Variant { Forward, Backward, AndGrad };

const c10::OperatorHandle& op_handle(Form form, Variant variant) {
  static const auto handle = [](Form f, Variant v) {
    const std::string name = op_name(f);
    const std::string full = v == Variant::Forward    ? name
                             : v == Variant::Backward ? "_" + name + "_backward"
                                                      : "_" + name + "_and_grad";
    return c10::Dispatcher::singleton().findSchemaOrThrow(("fusedgan::" + full).c_str(), "");
  };
  static const c10::OperatorHandle handles[2][3] = {
      {handle(Form::Logits, Variant::Forward), handle(Form::Logits, Variant::Backward),
       handle(Form::Logits, Variant::AndGrad)},
      {handle(Form::Probabilities, Variant::Forward), handle(Form::Probabilities, Variant::Backward),
       handle(Form::Probabilities, Variant::AndGrad)}};
  return handles[int(form)][int(variant)];
}

Tensor call_forward(Form form, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                    const OptionalTensor& pos_weight, int64_t reduction) {
  if (form == Form::Logits) {
    static const auto op = op_handle(form, Variant::Forward)
                               .typed<Tensor(const Tensor&, const Tensor&, const OptionalTensor&,
                                             const OptionalTensor&, int64_t)>();
    return op.call(input, target, weight, pos_weight, reduction);
  }
  static const auto op =
      op_handle(form, Variant::Forward).typed<Tensor(const Tensor&, const Tensor&, const OptionalTensor&, int64_t)>();
  return op.call(input, target, weight, reduction);
}

std::tuple<Tensor, Tensor> call_and_grad(Form form, const Tensor& input, const Tensor& target,
                                         const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                         int64_t reduction) {
  using Result = std::tuple<Tensor, Tensor>;
  if (form == Form::Logits) {
    static const auto op = op_handle(form, Variant::AndGrad)
                               .typed<Result(const Tensor&, const Tensor&, const OptionalTensor&,
                                             const OptionalTensor&, int64_t)>();
    return op.call(input, target, weight, pos_weight, reduction);
  }
  static const auto op = op_handle(form, Variant::AndGrad)
                             .typed<Result(const Tensor&, const Tensor&, const OptionalTensor&, int64_t)>();
  return op.call(input, target, weight, reduction);
}

std::tuple<Tensor, Tensor> call_backward(Form form, const Tensor& grad, const Tensor& input, const Tensor& target,
                                         const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                         int64_t reduction, OutputMask mask) {
  using Result = std::tuple<Tensor, Tensor>;
  if (form == Form::Logits) {
    static const auto op = op_handle(form, Variant::Backward)
                               .typed<Result(const Tensor&, const Tensor&, const Tensor&, const OptionalTensor&,
                                             const OptionalTensor&, int64_t, OutputMask)>();
    return op.call(grad, input, target, weight, pos_weight, reduction, mask);
  }
  static const auto op = op_handle(form, Variant::Backward)
                             .typed<Result(const Tensor&, const Tensor&, const Tensor&, const OptionalTensor&,
                                           int64_t, OutputMask)>();
  return op.call(grad, input, target, weight, reduction, mask);
}

// ---- Autograd

OptionalTensor optional(const Tensor& t) { return t.defined() ? OptionalTensor(t) : std::nullopt; }

void check_not_requiring_grad(Form form, const char* name, const OptionalTensor& t) {
  TORCH_CHECK(!(t && t->requires_grad()), op_name(form), " is not differentiable with respect to ", name,
              ", which must not require grad (as in torch)");
}

// Second derivatives, for double backward: the derivatives of the backward's outputs
// (grad_input, grad_target) with respect to grad, input and target, contracted with the
// incoming gradients gg_input, gg_target. S = grad * scale broadcast to the input.
//   logits:        gi = S w ((1 + (pw-1) y) s - pw y),   gt = S w (pw softplus(-x) - softplus(x)),  s = sigmoid(x)
//   probabilities: gi = S w (p - y) / max(p (1-p), 1e-12), gt = S w (log(1-p) - log p)
variable_list second_derivatives(Form form, const Tensor& grad, const Tensor& x, const Tensor& y,
                                 const OptionalTensor& weight, const OptionalTensor& pos_weight, int64_t reduction,
                                 const Tensor& gg_input, const Tensor& gg_target) {
  Tensor w = weight ? *weight : at::ones({}, x.options());
  if (reduction == int64_t(Reduction::Mean)) w = w / c10::Scalar(x.sym_numel());
  const Tensor ggi = gg_input.defined() ? gg_input : at::zeros_like(x);
  const Tensor ggt = gg_target.defined() ? gg_target : at::zeros_like(x);
  Tensor unit_input, unit_target, d_input, d_target;  // unit_*: the outputs per unit of S
  if (form == Form::Logits) {
    const Tensor pw = pos_weight ? *pos_weight : at::ones({}, x.options());
    const Tensor s = at::sigmoid(x);
    unit_input = w * ((1 + (pw - 1) * y) * s - pw * y);
    unit_target = w * (pw * at::softplus(-x) - at::softplus(x));
    d_input = w * (ggi * (1 + (pw - 1) * y) * s * (1 - s) - ggt * (pw * (1 - s) + s));
    d_target = w * ggi * ((pw - 1) * s - pw);
  } else {
    const Tensor product = x * (1 - x);
    const Tensor denominator = at::clamp_min(product, 1e-12);
    unit_input = w * (x - y) / denominator;
    unit_target = w * (at::log1p(-x) - at::log(x));
    const Tensor d_unit_input = w * (1 / denominator - (product > 1e-12) * (x - y) * (1 - 2 * x) / denominator.pow(2));
    d_input = ggi * d_unit_input - ggt * w / product;
    d_target = -ggi * w / denominator;
  }
  const Tensor s_full = grad.expand_symint(x.sym_sizes());
  Tensor d_grad = at::sum_to(ggi * unit_input + ggt * unit_target, grad.sym_sizes());
  return {d_grad, s_full * d_input, s_full * d_target};
}

class BceBackwardFunction : public torch::autograd::Function<BceBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, Form form, const Tensor& grad, const Tensor& input,
                               const Tensor& target, const OptionalTensor& weight, const OptionalTensor& pos_weight,
                               int64_t reduction) {
    ctx->save_for_backward({grad, input, target, weight.value_or(Tensor()), pos_weight.value_or(Tensor())});
    ctx->saved_data["form"] = int64_t(form);
    ctx->saved_data["reduction"] = reduction;
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_input, grad_target] =
        call_backward(form, grad, input, target, weight, pos_weight, reduction, OutputMask{true, true});
    return {grad_input, grad_target};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    auto d = second_derivatives(Form(ctx->saved_data["form"].toInt()), saved[0], saved[1], saved[2],
                                optional(saved[3]), optional(saved[4]), ctx->saved_data["reduction"].toInt(),
                                grads[0], grads[1]);
    return {Tensor(), d[0], d[1], d[2], Tensor(), Tensor(), Tensor()};
  }
};

Tensor forward_autograd(Form form, const Tensor& input, const Tensor& target, const OptionalTensor& weight,
                        const OptionalTensor& pos_weight, int64_t reduction) {
  if (at::GradMode::is_enabled()) {
    check_not_requiring_grad(form, "weight", weight);
    check_not_requiring_grad(form, "pos_weight", pos_weight);
  }
  if (!records_grad(input, target)) {
    at::AutoDispatchBelowADInplaceOrView guard;  // nothing to record
    return call_forward(form, input, target, weight, pos_weight, reduction);
  }
  // A reduced loss of which only the input needs a gradient computes that gradient in the
  // forward pass (autograd_support.h); other calls compute theirs in the backward op.
  const bool grad_in_forward = reduction != int64_t(Reduction::None) && !target.requires_grad();
  Tensor loss, grad_input;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    if (grad_in_forward) {
      std::tie(loss, grad_input) = call_and_grad(form, input, target, weight, pos_weight, reduction);
    } else {
      loss = call_forward(form, input, target, weight, pos_weight, reduction);
    }
  }
  const OutputMask mask{input.requires_grad(), target.requires_grad()};
  record_kept_grads(loss, form == Form::Logits ? "BceWithLogitsBackward" : "BceBackward", {input, target},
                    grad_in_forward ? std::vector<Tensor>{grad_input, Tensor()} : std::vector<Tensor>{},
                    {input, target, weight.value_or(Tensor()), pos_weight.value_or(Tensor())},
                    [form, reduction, mask](const variable_list& saved, const Tensor& grad) -> variable_list {
                      // Through the dispatcher: with create_graph the backward op's autograd kernel records it.
                      auto [grad_input, grad_target] = call_backward(form, grad, saved[0], saved[1], optional(saved[2]),
                                                                     optional(saved[3]), reduction, mask);
                      return {grad_input, grad_target};
                    });
  return loss;
}

std::tuple<Tensor, Tensor> backward_autograd(Form form, const Tensor& grad, const Tensor& input, const Tensor& target,
                                             const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                             int64_t reduction, OutputMask mask) {
  if (!records_grad(grad, input, target)) {  // the usual first-order backward: just the kernel, only the outputs asked for
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(form, grad, input, target, weight, pos_weight, reduction, mask);
  }
  // Autograd outputs must be defined: compute both, hand back the ones asked for.
  auto outputs = BceBackwardFunction::apply(form, grad, input, target, weight, pos_weight, reduction);
  return {mask[0] ? outputs[0] : Tensor(), mask[1] ? outputs[1] : Tensor()};
}

// The _and_grad ops are the first-order pass of the losses' autograd, not differentiable
// themselves.
std::tuple<Tensor, Tensor> and_grad_autograd(Form form, const Tensor& input, const Tensor& target,
                                             const OptionalTensor& weight, const OptionalTensor& pos_weight,
                                             int64_t reduction) {
  TORCH_CHECK(!records_grad(input, target), "_",
              op_name(form), "_and_grad is not differentiable; call ", op_name(form), " for a differentiable loss");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_and_grad(form, input, target, weight, pos_weight, reduction);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def(
      "binary_cross_entropy_with_logits(Tensor input, Tensor target, Tensor? weight=None, Tensor? pos_weight=None, "
      "int reduction=1) -> Tensor");
  m.def(
      "_binary_cross_entropy_with_logits_backward(Tensor grad, Tensor input, Tensor target, Tensor? weight, "
      "Tensor? pos_weight, int reduction, bool[2] output_mask) -> (Tensor, Tensor)");
  m.def("binary_cross_entropy(Tensor input, Tensor target, Tensor? weight=None, int reduction=1) -> Tensor");
  m.def(
      "_binary_cross_entropy_backward(Tensor grad, Tensor input, Tensor target, Tensor? weight, int reduction, "
      "bool[2] output_mask) -> (Tensor, Tensor)");
  m.def(
      "_binary_cross_entropy_with_logits_and_grad(Tensor input, Tensor target, Tensor? weight, Tensor? pos_weight, "
      "int reduction) -> (Tensor, Tensor)");
  m.def(
      "_binary_cross_entropy_and_grad(Tensor input, Tensor target, Tensor? weight, int reduction) -> (Tensor, Tensor)");
}

// The ops' kernels for one dispatch key, from implementations taking (Form, ...).
#define FUSEDGAN_REGISTER_BCE(m, FORWARD, BACKWARD, AND_GRAD)                                                       \
  m.impl("binary_cross_entropy_with_logits",                                                                       \
         [](const Tensor& input, const Tensor& target, const OptionalTensor& weight,                               \
            const OptionalTensor& pos_weight, int64_t reduction) {                                                 \
           return FORWARD(Form::Logits, input, target, weight, pos_weight, reduction);                             \
         });                                                                                                       \
  m.impl("_binary_cross_entropy_with_logits_backward",                                                             \
         [](const Tensor& grad, const Tensor& input, const Tensor& target, const OptionalTensor& weight,           \
            const OptionalTensor& pos_weight, int64_t reduction, OutputMask mask) {                                \
           return BACKWARD(Form::Logits, grad, input, target, weight, pos_weight, reduction, mask);                \
         });                                                                                                       \
  m.impl("binary_cross_entropy", [](const Tensor& input, const Tensor& target, const OptionalTensor& weight,      \
                                    int64_t reduction) {                                                           \
    return FORWARD(Form::Probabilities, input, target, weight, std::nullopt, reduction);                          \
  });                                                                                                              \
  m.impl("_binary_cross_entropy_backward", [](const Tensor& grad, const Tensor& input, const Tensor& target,       \
                                              const OptionalTensor& weight, int64_t reduction, OutputMask mask) { \
    return BACKWARD(Form::Probabilities, grad, input, target, weight, std::nullopt, reduction, mask);              \
  });                                                                                                              \
  m.impl("_binary_cross_entropy_with_logits_and_grad",                                                             \
         [](const Tensor& input, const Tensor& target, const OptionalTensor& weight,                               \
            const OptionalTensor& pos_weight, int64_t reduction) {                                                 \
           return AND_GRAD(Form::Logits, input, target, weight, pos_weight, reduction);                            \
         });                                                                                                       \
  m.impl("_binary_cross_entropy_and_grad", [](const Tensor& input, const Tensor& target,                          \
                                              const OptionalTensor& weight, int64_t reduction) {                  \
    return AND_GRAD(Form::Probabilities, input, target, weight, std::nullopt, reduction);                          \
  })

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { FUSEDGAN_REGISTER_BCE(m, forward, backward, and_grad); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { FUSEDGAN_REGISTER_BCE(m, forward, backward, and_grad); }
TORCH_LIBRARY_IMPL(fusedgan, Meta, m) { FUSEDGAN_REGISTER_BCE(m, forward_meta, backward_meta, and_grad_meta); }
TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  FUSEDGAN_REGISTER_BCE(m, forward_autograd, backward_autograd, and_grad_autograd);
}

}  // namespace fusedgan

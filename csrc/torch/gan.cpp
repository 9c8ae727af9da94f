// The GAN costs as torch operators: fusedgan::discriminator_cost (J(D) over a real and a
// fake batch of logits), fusedgan::generator_cost (J(G), three kinds) and
// fusedgan::discriminator_stats (for logs, no gradient). Each cost has an _and_grad op that
// returns the value with its gradients from the same pass, which autograd keeps for the
// backward (autograd.h); the formulas are csrc/math/gan.h's.
#include <torch/library.h>

#include <string_view>
#include <tuple>

#include "../math/gan.h"
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

// ---- checks

at::ScalarType check_batches(const char* op, const Tensor& real, const Tensor& fake) {
  check_floating(op, "real_logits", real);
  check_floating(op, "fake_logits", fake);
  check_same_device(op, "fake_logits", fake, real);
  TORCH_CHECK_VALUE(real.sym_numel() != 0, op, ": real_logits is empty; the costs are means over the batch");
  TORCH_CHECK_VALUE(fake.sym_numel() != 0, op, ": fake_logits is empty; the costs are means over the batch");
  return at::promote_types(real.scalar_type(), fake.scalar_type());
}

void check_label(const char* op, const char* name, double label) {
  TORCH_CHECK_VALUE(label >= 0 && label <= 1, op, ": ", name, " must lie in [0, 1], got ", label);
}

at::ScalarType check_discriminator(const Tensor& real, const Tensor& fake, double real_label, double fake_label) {
  const auto dtype = check_batches("discriminator_cost", real, fake);
  check_label("discriminator_cost", "real_label", real_label);
  check_label("discriminator_cost", "fake_label", fake_label);
  return dtype;
}

GeneratorKind generator_kind(c10::string_view kind_view) {
  const std::string_view kind(kind_view.data(), kind_view.size());
  if (kind == "minimax") return GeneratorKind::Minimax;
  if (kind == "non_saturating") return GeneratorKind::NonSaturating;
  TORCH_CHECK_VALUE(kind == "maximum_likelihood",
                    "generator_cost: kind must be 'minimax', 'non_saturating' or 'maximum_likelihood', got '", kind,
                    "'");
  return GeneratorKind::MaximumLikelihood;
}

const char* kind_name(GeneratorKind kind) {
  switch (kind) {
    case GeneratorKind::Minimax:
      return "minimax";
    case GeneratorKind::NonSaturating:
      return "non_saturating";
    case GeneratorKind::MaximumLikelihood:
      break;
  }
  return "maximum_likelihood";
}

at::ScalarType check_generator(const Tensor& fake, c10::string_view kind) {
  check_floating("generator_cost", "fake_logits", fake);
  TORCH_CHECK_VALUE(fake.sym_numel() != 0, "generator_cost: fake_logits is empty; the cost is a mean over the batch");
  generator_kind(kind);
  return fake.scalar_type();
}

// ---- a batch as the kernels see it

struct BatchView {
  OptionalTensor logits;
  Plan plan;
  BatchView(const Tensor& t, at::ScalarType dtype) : logits(cast(t, dtype, t.device())), plan(fusedgan::plan(t.sizes(), {&logits})) {}
  Batch batch() const { return Batch{plan.grid, plan.operands[0]}; }
};

Tensor gradient_like(const Tensor& t, at::ScalarType dtype) { return new_output(t.sizes(), t.options().dtype(dtype)); }
void* data_or_null(const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }

// ---- CPU and CUDA

// J(D) and, with_grad, its gradients for both batches.
std::tuple<Tensor, Tensor, Tensor> discriminator_cost_with_grad(const Tensor& real, const Tensor& fake,
                                                                double real_label, double fake_label, bool with_grad) {
  const auto dtype = check_discriminator(real, fake, real_label, fake_label);
  const BatchView real_view(real, dtype), fake_view(fake, dtype);
  const DiscriminatorArgs args{kernel_dtype(dtype), real_view.batch(), fake_view.batch(), real_label, fake_label};
  Tensor out = at::empty({}, real.options().dtype(dtype));
  Tensor grad_real = with_grad ? gradient_like(real, dtype) : Tensor();
  Tensor grad_fake = with_grad ? gradient_like(fake, dtype) : Tensor();
  on_device(real, [&](const auto& kernels, auto... launch) {
    kernels.discriminator_cost(args, out.data_ptr(), data_or_null(grad_real), data_or_null(grad_fake), launch...);
  });
  return {out, grad_real, grad_fake};
}

Tensor discriminator_cost(const Tensor& real, const Tensor& fake, double real_label, double fake_label) {
  return std::get<0>(discriminator_cost_with_grad(real, fake, real_label, fake_label, false));
}

std::tuple<Tensor, Tensor, Tensor> discriminator_cost_and_grad(const Tensor& real, const Tensor& fake,
                                                               double real_label, double fake_label) {
  return discriminator_cost_with_grad(real, fake, real_label, fake_label, true);
}

Tensor discriminator_stats(const Tensor& real, const Tensor& fake) {
  const auto dtype = check_batches("discriminator_stats", real, fake);
  const BatchView real_view(real, dtype), fake_view(fake, dtype);
  const DiscriminatorArgs args{kernel_dtype(dtype), real_view.batch(), fake_view.batch(), 1.0, 0.0};
  Tensor out = at::empty({3}, real.options().dtype(dtype));
  on_device(real, [&](const auto& kernels, auto... launch) { kernels.discriminator_stats(args, out.data_ptr(), launch...); });
  return out;
}

std::tuple<Tensor, Tensor> generator_cost_with_grad(const Tensor& fake, c10::string_view kind, bool with_grad) {
  const auto dtype = check_generator(fake, kind);
  const BatchView view(fake, dtype);
  const GeneratorArgs args{kernel_dtype(dtype), view.batch(), generator_kind(kind)};
  Tensor out = at::empty({}, fake.options());
  Tensor grad = with_grad ? gradient_like(fake, dtype) : Tensor();
  on_device(fake, [&](const auto& kernels, auto... launch) {
    kernels.generator_cost(args, out.data_ptr(), data_or_null(grad), launch...);
  });
  return {out, grad};
}

Tensor generator_cost(const Tensor& fake, c10::string_view kind) {
  return std::get<0>(generator_cost_with_grad(fake, kind, false));
}

std::tuple<Tensor, Tensor> generator_cost_and_grad(const Tensor& fake, c10::string_view kind) {
  return generator_cost_with_grad(fake, kind, true);
}

// ---- Meta

at::TensorOptions options_of(const Tensor& t, at::ScalarType dtype) { return t.options().dtype(dtype); }

Tensor discriminator_cost_meta(const Tensor& real, const Tensor& fake, double real_label, double fake_label) {
  return at::empty({}, options_of(real, check_discriminator(real, fake, real_label, fake_label)));
}

std::tuple<Tensor, Tensor, Tensor> discriminator_cost_and_grad_meta(const Tensor& real, const Tensor& fake,
                                                                    double real_label, double fake_label) {
  const auto options = options_of(real, check_discriminator(real, fake, real_label, fake_label));
  return {at::empty({}, options), at::empty_symint(real.sym_sizes(), options),
          at::empty_symint(fake.sym_sizes(), options)};
}

Tensor discriminator_stats_meta(const Tensor& real, const Tensor& fake) {
  return at::empty({3}, options_of(real, check_batches("discriminator_stats", real, fake)));
}

Tensor generator_cost_meta(const Tensor& fake, c10::string_view kind) {
  return at::empty({}, options_of(fake, check_generator(fake, kind)));
}

std::tuple<Tensor, Tensor> generator_cost_and_grad_meta(const Tensor& fake, c10::string_view kind) {
  const auto options = options_of(fake, check_generator(fake, kind));
  return {at::empty({}, options), at::empty_symint(fake.sym_sizes(), options)};
}

// ---- calls through the dispatcher

Tensor call_discriminator_cost(const Tensor& real, const Tensor& fake, double real_label, double fake_label) {
  return call_op<"fusedgan::discriminator_cost", Tensor>(real, fake, real_label, fake_label);
}

std::tuple<Tensor, Tensor, Tensor> call_discriminator_cost_and_grad(const Tensor& real, const Tensor& fake,
                                                                    double real_label, double fake_label) {
  return call_op<"fusedgan::_discriminator_cost_and_grad", std::tuple<Tensor, Tensor, Tensor>>(real, fake, real_label,
                                                                                               fake_label);
}

Tensor call_discriminator_stats(const Tensor& real, const Tensor& fake) {
  return call_op<"fusedgan::discriminator_stats", Tensor>(real, fake);
}

Tensor call_generator_cost(const Tensor& fake, c10::string_view kind) {
  return call_op<"fusedgan::generator_cost", Tensor>(fake, kind);
}

std::tuple<Tensor, Tensor> call_generator_cost_and_grad(const Tensor& fake, c10::string_view kind) {
  return call_op<"fusedgan::_generator_cost_and_grad", std::tuple<Tensor, Tensor>>(fake, kind);
}

// ---- Autograd: the gradients come from the forward pass (kept by the node); a second
// backward (retained graph) runs the _and_grad op again, and a differentiable one
// (create_graph) takes the derivatives of csrc/math/gan.h in ATen ops (tensor_math.h), times
// the means' 1/n.

// d J(D) / d logits of one batch, times grad: 1/2 mean of bce(x, label)'s derivative.
Tensor differentiable_discriminator_grad(const Tensor& grad, const Tensor& logits, double label) {
  using tensor_math::Expr;
  const Expr x(logits.to(tensor_math::computation_dtype(logits.scalar_type()))), one(1.0);
  const Tensor derivative = math::bce_with_logits_grad_input(x, Expr(label), one, one).to_tensor(logits);
  return (grad * 0.5 / c10::Scalar(logits.sym_numel()) * derivative).to(logits.scalar_type());
}

// d J(G) / d logits, times grad.
Tensor differentiable_generator_grad(const Tensor& grad, const Tensor& logits, GeneratorKind kind) {
  const tensor_math::Expr x(logits.to(tensor_math::computation_dtype(logits.scalar_type())));
  tensor_math::Expr derivative;
  math::with_generator_term(kind, 1.0, [&](auto term) { derivative = term.derivative(x); });
  return (grad / c10::Scalar(logits.sym_numel()) * derivative.to_tensor(logits)).to(logits.scalar_type());
}

// The tangent that a batch of logits gives a cost: its tangent times d cost / d logits, the
// derivative (a differentiable_*_grad at grad = 1) taken at the primal, summed.
template <class Derivative>
Tensor tangent_part(const Tensor& logits, const Derivative& derivative) {
  const Tensor t = tangent_of(logits);
  return t.defined() ? (derivative(at::ones({}, t.options()), primal_of(logits)) * t).sum() : Tensor();
}

Tensor sum_defined(const Tensor& a, const Tensor& b) { return !a.defined() ? b : !b.defined() ? a : a + b; }

Tensor discriminator_cost_autograd(const Tensor& real, const Tensor& fake, double real_label, double fake_label) {
  const bool forward_ad = has_tangents(real, fake);
  Tensor cost;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    if (!records_grad(real, fake)) {
      cost = call_discriminator_cost(real, fake, real_label, fake_label);
      if (!forward_ad) return cost;
    } else {
      // The gradients from the forward pass, kept, unless a transform or forward AD would not use them.
      std::vector<Tensor> kept;
      if (forward_ad || transformed(real) || transformed(fake)) {
        cost = call_discriminator_cost(real, fake, real_label, fake_label);
      } else {
        auto [value, grad_real, grad_fake] = call_discriminator_cost_and_grad(real, fake, real_label, fake_label);
        cost = value;
        kept = {grad_real, grad_fake};
      }
      record_backward(
          cost, "DiscriminatorCostBackward", {real, fake}, std::move(kept), {real, fake},
          [real_label, fake_label](const variable_list& saved, const Tensor& grad, const std::vector<bool>&) {
            if (!at::GradMode::is_enabled() && !has_tangents(grad, saved[0], saved[1])) {  // the same pass again
              auto [cost, real, fake] = call_discriminator_cost_and_grad(saved[0], saved[1], real_label, fake_label);
              return variable_list{scale_forward_grad(real, grad), scale_forward_grad(fake, grad)};
            }
            return variable_list{differentiable_discriminator_grad(grad, saved[0], real_label),
                                 differentiable_discriminator_grad(grad, saved[1], fake_label)};
          });
    }
  }
  if (forward_ad) {
    const auto part = [](double label) {
      return [label](const Tensor& grad, const Tensor& logits) { return differentiable_discriminator_grad(grad, logits, label); };
    };
    set_tangent(cost, sum_defined(tangent_part(real, part(real_label)), tangent_part(fake, part(fake_label))));
  }
  return cost;
}

Tensor generator_cost_autograd(const Tensor& fake, c10::string_view kind_name_view) {
  const GeneratorKind kind = generator_kind(kind_name_view);
  const bool forward_ad = has_tangents(fake);
  Tensor cost;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    if (!records_grad(fake)) {
      cost = call_generator_cost(fake, kind_name_view);
      if (!forward_ad) return cost;
    } else {
      std::vector<Tensor> kept;
      if (forward_ad || transformed(fake)) {
        cost = call_generator_cost(fake, kind_name_view);
      } else {
        auto [value, grad] = call_generator_cost_and_grad(fake, kind_name(kind));
        cost = value;
        kept = {grad};
      }
      record_backward(cost, "GeneratorCostBackward", {fake}, std::move(kept), {fake},
                      [kind](const variable_list& saved, const Tensor& grad_output, const std::vector<bool>&) {
                        if (!at::GradMode::is_enabled() && !has_tangents(grad_output, saved[0])) {  // the same pass again
                          auto [cost, grad] = call_generator_cost_and_grad(saved[0], kind_name(kind));
                          return variable_list{scale_forward_grad(grad, grad_output)};
                        }
                        return variable_list{differentiable_generator_grad(grad_output, saved[0], kind)};
                      });
    }
  }
  if (forward_ad) {
    set_tangent(cost, tangent_part(fake, [kind](const Tensor& grad, const Tensor& logits) {
                  return differentiable_generator_grad(grad, logits, kind);
                }));
  }
  return cost;
}

// Not differentiable: the statistics, and the _and_grad ops (the first-order pass of the
// costs' autograd).
Tensor discriminator_stats_autograd(const Tensor& real, const Tensor& fake) {
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_discriminator_stats(real, fake);
}

std::tuple<Tensor, Tensor, Tensor> discriminator_cost_and_grad_autograd(const Tensor& real, const Tensor& fake,
                                                                        double real_label, double fake_label) {
  check_first_order(records_grad(real, fake) || has_tangents(real, fake), "_discriminator_cost_and_grad",
                    "discriminator_cost", "cost");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_discriminator_cost_and_grad(real, fake, real_label, fake_label);
}

std::tuple<Tensor, Tensor> generator_cost_and_grad_autograd(const Tensor& fake, c10::string_view kind) {
  check_first_order(records_grad(fake) || has_tangents(fake), "_generator_cost_and_grad", "generator_cost", "cost");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_generator_cost_and_grad(fake, kind);
}

void register_device_kernels(torch::Library& m) {
  m.impl("discriminator_cost", discriminator_cost);
  m.impl("_discriminator_cost_and_grad", discriminator_cost_and_grad);
  m.impl("discriminator_stats", discriminator_stats);
  m.impl("generator_cost", generator_cost);
  m.impl("_generator_cost_and_grad", generator_cost_and_grad);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("discriminator_cost(Tensor real_logits, Tensor fake_logits, float real_label=1., float fake_label=0.) -> Tensor");
  m.def(
      "_discriminator_cost_and_grad(Tensor real_logits, Tensor fake_logits, float real_label, float fake_label) "
      "-> (Tensor, Tensor, Tensor)");
  m.def("discriminator_stats(Tensor real_logits, Tensor fake_logits) -> Tensor");
  m.def("generator_cost(Tensor fake_logits, str kind='non_saturating') -> Tensor");
  m.def("_generator_cost_and_grad(Tensor fake_logits, str kind) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("discriminator_cost", discriminator_cost_meta);
  m.impl("_discriminator_cost_and_grad", discriminator_cost_and_grad_meta);
  m.impl("discriminator_stats", discriminator_stats_meta);
  m.impl("generator_cost", generator_cost_meta);
  m.impl("_generator_cost_and_grad", generator_cost_and_grad_meta);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("discriminator_cost", discriminator_cost_autograd);
  m.impl("_discriminator_cost_and_grad", discriminator_cost_and_grad_autograd);
  m.impl("discriminator_stats", discriminator_stats_autograd);
  m.impl("generator_cost", generator_cost_autograd);
  m.impl("_generator_cost_and_grad", generator_cost_and_grad_autograd);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCPU, m) { register_float32_autocast(m, {"discriminator_cost", "generator_cost"}); }
TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"discriminator_cost", "generator_cost"}); }

}  // namespace fusedgan

// fusedgan::multivariate_normal_log_likelihood(x, loc, scale_tril): per data set,
// sum_i log N(x_i; loc, L L^T) with L = tril(scale_tril), x (*B, N, D), loc (*B, D) and
// scale_tril (*B, D, D), the batch dims broadcast. A forward substitution per point, nothing of
// size N x D x D (csrc/math/multivariate_normal.h); a _backward op gives all three gradients,
// and an _and_grad op the log-likelihoods with the parameters' gradients in one pass.
#include <torch/library.h>

#include "../math/scalar.h"
#include "autocast.h"
#include "autograd.h"
#include "checks.h"
#include "device.h"
#include "dispatch.h"
#include "layout.h"
#include "output.h"
#include "sets.h"

namespace fusedgan {
namespace {

using torch::autograd::variable_list;
using Gradients = std::tuple<Tensor, Tensor, Tensor>;
using OutputMask = std::array<bool, 3>;

constexpr const char* kOp = "multivariate_normal_log_likelihood";

// The broadcast batch shape, after checking every argument.
std::vector<int64_t> check_and_batch(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  check_floating(kOp, "x", x);
  check_floating(kOp, "loc", loc);
  check_floating(kOp, "scale_tril", scale_tril);
  check_same_device(kOp, "loc", loc, x);
  check_same_device(kOp, "scale_tril", scale_tril, x);
  TORCH_CHECK_VALUE(x.dim() >= 2 && loc.dim() >= 1 && scale_tril.dim() >= 2, kOp,
                    ": expected x (*B, N, D), loc (*B, D) and scale_tril (*B, D, D), got shapes ", x.sizes(), ", ",
                    loc.sizes(), ", ", scale_tril.sizes());
  const int64_t d = x.size(-1);
  TORCH_CHECK_VALUE(loc.size(-1) == d, kOp, ": loc needs D = ", d, " dimensions like x, got shape ", loc.sizes());
  TORCH_CHECK_VALUE(scale_tril.size(-2) == d && scale_tril.size(-1) == d, kOp, ": scale_tril needs D x D = ", d,
                    " x ", d, " like x, got shape ", scale_tril.sizes());
  return broadcast_batch(kOp, {{"x", x, 2}, {"loc", loc, 1}, {"scale_tril", scale_tril, 2}});
}

at::ScalarType dtype_of(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  return at::promote_types(x.scalar_type(), at::promote_types(loc.scalar_type(), scale_tril.scalar_type()));
}

// The kernels' inputs: x laid out in dtype, and the parameters and their per-set terms in
// double (parameter-sized, computed here once instead of per point).
struct MultivariateNormalCall {
  Tensor x, loc, scale_tril, inv_diagonal, log_normalizer;
  MultivariateNormalArgs args;
  MultivariateNormalCall(const std::vector<int64_t>& batch, at::ScalarType dtype, const Tensor& x_, const Tensor& loc_,
                         const Tensor& scale_tril_)
      : x(laid_out(x_, batch, 2, dtype)),
        loc(laid_out(loc_, batch, 1, at::kDouble)),
        scale_tril(laid_out(scale_tril_, batch, 2, at::kDouble)),
        inv_diagonal(at::reciprocal(scale_tril.diagonal(0, -2, -1)).contiguous()),
        log_normalizer(-at::log(scale_tril.diagonal(0, -2, -1)).sum(-1) - double(x_.size(-1)) * math::kHalfLog2Pi),
        args{kernel_dtype(dtype),
             c10::multiply_integers(batch),
             x_.size(-2),
             x_.size(-1),
             x.data_ptr(),
             loc.data_ptr<double>(),
             scale_tril.data_ptr<double>(),
             inv_diagonal.data_ptr<double>(),
             log_normalizer.data_ptr<double>()} {}
};

Tensor forward(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  const auto batch = check_and_batch(x, loc, scale_tril);
  check_positive(kOp, "the diagonal of scale_tril", scale_tril.diagonal(0, -2, -1));
  const auto dtype = dtype_of(x, loc, scale_tril);
  const MultivariateNormalCall call(batch, dtype, x, loc, scale_tril);
  Tensor out = at::empty(batch, x.options().dtype(dtype));
  on_device(x, [&](const auto& kernels, auto... launch) {
    kernels.multivariate_normal_log_likelihood(call.args, out.data_ptr(), launch...);
  });
  return out;
}

// The gradients of each set's log-likelihood times grad_sets[set] (grad in dtype, contiguous)
// for the arguments in mask, summed to their shapes; with `value` defined, the log-likelihoods
// into it in the same pass.
Gradients gradients(const std::vector<int64_t>& batch, at::ScalarType dtype, const Tensor& grad_sets, const Tensor& x,
                    const Tensor& loc, const Tensor& scale_tril, OutputMask mask, const Tensor& value) {
  const MultivariateNormalCall call(batch, dtype, x, loc, scale_tril);
  const auto doubles = x.options().dtype(at::kDouble);
  Tensor gx = mask[0] ? new_output(call.x.sizes(), call.x.options()) : Tensor();
  Tensor gloc = mask[1] ? at::empty(call.loc.sizes(), doubles) : Tensor();
  Tensor gscale_tril = mask[2] ? at::empty(call.scale_tril.sizes(), doubles) : Tensor();
  const auto data = [](const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; };
  const MultivariateNormalGrads grads{data(gx), static_cast<double*>(data(gloc)), static_cast<double*>(data(gscale_tril)),
                                      data(value)};
  on_device(x, [&](const auto& kernels, auto... launch) {
    kernels.multivariate_normal_log_likelihood_backward(call.args, grad_sets.data_ptr(), grads, launch...);
  });
  return {gradient_for(gx, x, dtype), gradient_for(gloc, loc, dtype), gradient_for(gscale_tril, scale_tril, dtype)};
}

Gradients backward(const Tensor& grad, const Tensor& x, const Tensor& loc, const Tensor& scale_tril, OutputMask mask) {
  const auto batch = check_and_batch(x, loc, scale_tril);
  check_grad(kOp, grad, x, c10::fromIntArrayRefSlow(batch));
  const auto dtype = dtype_of(x, loc, scale_tril);
  return gradients(batch, dtype, cast(grad, dtype, x.device())->contiguous(), x, loc, scale_tril, mask, Tensor());
}

// The log-likelihoods and, for the parameters in mask, the gradients of their sum, in one pass.
std::tuple<Tensor, Tensor, Tensor> and_grad(const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                                            std::array<bool, 2> mask) {
  const auto batch = check_and_batch(x, loc, scale_tril);
  check_positive(kOp, "the diagonal of scale_tril", scale_tril.diagonal(0, -2, -1));
  const auto dtype = dtype_of(x, loc, scale_tril);
  Tensor value = at::empty(batch, x.options().dtype(dtype));
  const auto [gx, gloc, gscale_tril] =
      gradients(batch, dtype, at::ones(batch, value.options()), x, loc, scale_tril, {false, mask[0], mask[1]}, value);
  return {value, gloc, gscale_tril};
}

Tensor forward_meta(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  return at::empty(check_and_batch(x, loc, scale_tril), x.options().dtype(dtype_of(x, loc, scale_tril)));
}

Gradients backward_meta(const Tensor& grad, const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                        OutputMask mask) {
  check_grad(kOp, grad, x, c10::fromIntArrayRefSlow(check_and_batch(x, loc, scale_tril)));
  const auto options = x.options().dtype(dtype_of(x, loc, scale_tril));
  const auto like = [&](bool wanted, const Tensor& t) { return wanted ? at::empty(t.sizes(), options) : Tensor(); };
  return {like(mask[0], x), like(mask[1], loc), like(mask[2], scale_tril)};
}

std::tuple<Tensor, Tensor, Tensor> and_grad_meta(const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                                                 std::array<bool, 2> mask) {
  const Tensor value = forward_meta(x, loc, scale_tril);
  const auto like = [&](bool wanted, const Tensor& t) { return wanted ? at::empty(t.sizes(), value.options()) : Tensor(); };
  return {value, like(mask[0], loc), like(mask[1], scale_tril)};
}

Tensor call_forward(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  return call_op<"fusedgan::multivariate_normal_log_likelihood", Tensor>(x, loc, scale_tril);
}

Gradients call_backward(const Tensor& grad, const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                        OutputMask mask) {
  return call_op<"fusedgan::_multivariate_normal_log_likelihood_backward", Gradients>(grad, x, loc, scale_tril, mask);
}

std::tuple<Tensor, Tensor, Tensor> call_and_grad(const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                                                 std::array<bool, 2> mask) {
  return call_op<"fusedgan::_multivariate_normal_log_likelihood_and_grad", std::tuple<Tensor, Tensor, Tensor>>(
      x, loc, scale_tril, mask);
}

// ---- Autograd

// The gradients in ATen ops, the formulas of csrc/math/multivariate_normal.h on whole tensors
// (triangular solves over all points at once): differentiable again, and carrying tangents,
// for create_graph and forward-mode AD through the backward (torch.func.hessian). The tests
// hold the kernels' gradients to them. With L = tril(scale_tril), z = L^-1 (x - loc) and
// w = L^-T z per point:
//   d/dx = -g w,  d/dloc = g sum_i w_i,  d/dL = g (tril(sum_i w_i z_i^T) - N diag(1/L_jj)).
Gradients differentiable_backward(const Tensor& grad, const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                                  OutputMask mask) {
  const Tensor l = at::tril(scale_tril);                                                              // (*B, D, D)
  const Tensor z = at::linalg_solve_triangular(l, (x - loc.unsqueeze(-2)).mT(), /*upper=*/false);    // (*B, D, N)
  const Tensor w = at::linalg_solve_triangular(l.mT(), z, /*upper=*/true);                           // (*B, D, N)
  const Tensor g = grad.unsqueeze(-1).unsqueeze(-1);                                                  // (*B, 1, 1)
  const auto gradient = [&](bool wanted, const Tensor& value, const Tensor& argument) {
    return wanted ? at::sum_to(value, argument.sizes()) : Tensor();
  };
  const Tensor normalizer = double(x.size(-2)) * at::diag_embed(at::reciprocal(l.diagonal(0, -2, -1)));
  return {gradient(mask[0], -g * w.mT(), x), gradient(mask[1], grad.unsqueeze(-1) * w.sum(-1), loc),
          gradient(mask[2], g * (at::tril(at::matmul(w, z.mT())) - normalizer), scale_tril)};
}

// The tangent per set, from the backward op on the primals (sets.h).
Tensor tangent(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  const auto batch = check_and_batch(primal_of(x), primal_of(loc), primal_of(scale_tril));
  const auto backward = [](const Tensor& ones, const std::array<Tensor, 3>& at, const OutputMask& wanted) {
    const auto [gx, gloc, gscale_tril] = call_backward(ones, at[0], at[1], at[2], wanted);
    return std::array<Tensor, 3>{gx, gloc, gscale_tril};
  };
  // the dims of one set: (N, D), (D), (D, D)
  return tangent_from_gradients<3>({x, loc, scale_tril}, {2, 1, 2}, batch, dtype_of(x, loc, scale_tril), backward);
}

// Whether the forward takes the parameters' gradients too and keeps them: where the data need
// none and each parameter that needs one has one per data set (the backward then scales each
// set's by its incoming gradient); not under torch.func, which would not use them.
bool keeps_gradients(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  if (x.requires_grad() || transformed(x) || transformed(loc) || transformed(scale_tril)) return false;
  const auto batch = check_and_batch(x, loc, scale_tril);
  const auto per_set = [&](const Tensor& p, int64_t tail) {
    return !p.requires_grad() || p.sizes().slice(0, p.dim() - tail) == c10::IntArrayRef(batch);
  };
  return per_set(loc, 1) && per_set(scale_tril, 2);
}

Tensor forward_autograd(const Tensor& x, const Tensor& loc, const Tensor& scale_tril) {
  Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    std::vector<Tensor> kept;  // none, or one per input (the data's undefined)
    if (records_grad(x, loc, scale_tril) && keeps_gradients(x, loc, scale_tril)) {
      kept.resize(3);
      std::tie(out, kept[1], kept[2]) = call_and_grad(x, loc, scale_tril, {loc.requires_grad(), scale_tril.requires_grad()});
    } else {
      out = call_forward(x, loc, scale_tril);
    }
    if (records_grad(x, loc, scale_tril)) {
      record_backward(out, "MultivariateNormalLogLikelihoodBackward", {x, loc, scale_tril}, std::move(kept),
                      {x, loc, scale_tril},
                      [](const variable_list& s, const Tensor& grad, const std::vector<bool>& wanted) {
                        auto [gx, gloc, gscale_tril] =
                            call_backward(grad, s[0], s[1], s[2], {wanted[0], wanted[1], wanted[2]});
                        return variable_list{gx, gloc, gscale_tril};
                      });
    }
  }
  if (has_tangents(x, loc, scale_tril)) set_tangent(out, tangent(x, loc, scale_tril));
  return out;
}

// Where a graph must be recorded or a tangent carried, the gradients are the ATen formulas'.
Gradients backward_autograd(const Tensor& grad, const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                            OutputMask mask) {
  if (!records_grad(grad, x, loc, scale_tril) && !has_tangents(grad, x, loc, scale_tril)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(grad, x, loc, scale_tril, mask);
  }
  check_grad(kOp, grad, x, c10::fromIntArrayRefSlow(check_and_batch(x, loc, scale_tril)));
  return differentiable_backward(grad, x, loc, scale_tril, mask);
}

// The _and_grad op is the first-order pass of the log-likelihood's autograd, not differentiable itself.
std::tuple<Tensor, Tensor, Tensor> and_grad_autograd(const Tensor& x, const Tensor& loc, const Tensor& scale_tril,
                                                     std::array<bool, 2> mask) {
  check_first_order(records_grad(x, loc, scale_tril) || has_tangents(x, loc, scale_tril),
                    "_multivariate_normal_log_likelihood_and_grad", kOp, "value");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_and_grad(x, loc, scale_tril, mask);
}

void register_device_kernels(torch::Library& m) {
  m.impl("multivariate_normal_log_likelihood", forward);
  m.impl("_multivariate_normal_log_likelihood_backward", backward);
  m.impl("_multivariate_normal_log_likelihood_and_grad", and_grad);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("multivariate_normal_log_likelihood(Tensor x, Tensor loc, Tensor scale_tril) -> Tensor");
  m.def(
      "_multivariate_normal_log_likelihood_backward(Tensor grad, Tensor x, Tensor loc, Tensor scale_tril, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def(
      "_multivariate_normal_log_likelihood_and_grad(Tensor x, Tensor loc, Tensor scale_tril, bool[2] output_mask) -> "
      "(Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("multivariate_normal_log_likelihood", forward_meta);
  m.impl("_multivariate_normal_log_likelihood_backward", backward_meta);
  m.impl("_multivariate_normal_log_likelihood_and_grad", and_grad_meta);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("multivariate_normal_log_likelihood", forward_autograd);
  m.impl("_multivariate_normal_log_likelihood_backward", backward_autograd);
  m.impl("_multivariate_normal_log_likelihood_and_grad", and_grad_autograd);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"multivariate_normal_log_likelihood"}); }

}  // namespace fusedgan

// fusedgan::normal_mixture_log_likelihood(x, logits, loc, scale): per data set,
// sum_n log sum_k softmax(logits)_k N(x_n; loc_k, diag(scale_k^2)), with x (*B, N, D),
// logits (*B, K), loc and scale (*B, K, D), the batch dims broadcast. Nothing of size
// N x K x D is formed (csrc/math/mixture.h); a _backward op gives all four gradients, and
// _normal_mixture_em fits the mixture by EM.
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
using Gradients = std::tuple<Tensor, Tensor, Tensor, Tensor>;
using OutputMask = std::array<bool, 4>;

constexpr const char* kOp = "normal_mixture_log_likelihood";

// The broadcast batch shape, after checking every argument (the messages naming `op`).
std::vector<int64_t> check_and_batch(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale,
                                     const char* op = kOp) {
  check_floating(op, "x", x);
  check_floating(op, "logits", logits);
  check_floating(op, "loc", loc);
  check_floating(op, "scale", scale);
  check_same_device(op, "logits", logits, x);
  check_same_device(op, "loc", loc, x);
  check_same_device(op, "scale", scale, x);
  TORCH_CHECK_VALUE(x.dim() >= 2 && logits.dim() >= 1 && loc.dim() >= 2 && scale.dim() >= 2, op,
                    ": expected x (*B, N, D), logits (*B, K), loc and scale (*B, K, D), got shapes ", x.sizes(), ", ",
                    logits.sizes(), ", ", loc.sizes(), ", ", scale.sizes());
  const int64_t k = logits.size(-1), d = x.size(-1);
  TORCH_CHECK_VALUE(loc.size(-2) == k && scale.size(-2) == k, op, ": loc and scale need K = ", k,
                    " components like logits, got shapes ", loc.sizes(), " and ", scale.sizes());
  TORCH_CHECK_VALUE(loc.size(-1) == d && scale.size(-1) == d, op, ": loc and scale need D = ", d,
                    " dimensions like x, got shapes ", loc.sizes(), " and ", scale.sizes());
  return broadcast_batch(kOp, {{"x", x, 2}, {"logits", logits, 1}, {"loc", loc, 2}, {"scale", scale, 2}});
}

at::ScalarType dtype_of(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale) {
  return at::promote_types(at::promote_types(x.scalar_type(), logits.scalar_type()),
                           at::promote_types(loc.scalar_type(), scale.scalar_type()));
}

// The kernels' inputs: x and loc laid out in dtype, and the per-component terms in double
// (parameter-sized, computed here once instead of per point).
struct MixtureCall {
  Tensor x, loc, log_pi, log_weight, inv_scale;
  MixtureArgs args;
  MixtureCall(const std::vector<int64_t>& batch, at::ScalarType dtype, const Tensor& x_, const Tensor& logits,
       const Tensor& loc_, const Tensor& scale)
      : x(laid_out(x_, batch, 2, dtype)),
        loc(laid_out(loc_, batch, 2, dtype)),
        log_pi(laid_out(at::log_softmax(logits.to(at::kDouble), -1), batch, 1, at::kDouble)),
        log_weight(log_pi - laid_out(at::log(scale.to(at::kDouble)).sum(-1), batch, 1, at::kDouble) -
                   double(x_.size(-1)) * math::kHalfLog2Pi),
        inv_scale(laid_out(at::reciprocal(scale.to(at::kDouble)), batch, 2, at::kDouble)),
        args{kernel_dtype(dtype), c10::multiply_integers(batch), x_.size(-2), logits.size(-1), x_.size(-1),
             x.data_ptr(), loc.data_ptr(), log_pi.data_ptr<double>(), log_weight.data_ptr<double>(),
             inv_scale.data_ptr<double>()} {}
};

Tensor forward(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale) {
  const auto batch = check_and_batch(x, logits, loc, scale);
  check_positive(kOp, "scale", scale);
  const auto dtype = dtype_of(x, logits, loc, scale);
  const MixtureCall call(batch, dtype, x, logits, loc, scale);
  Tensor out = at::empty(batch, x.options().dtype(dtype));
  on_device(x, [&](const auto& kernels, auto... launch) {
    kernels.mixture_log_likelihood(call.args, out.data_ptr(), launch...);
  });
  return out;
}

Gradients backward(const Tensor& grad, const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale,
                   OutputMask mask) {
  const auto batch = check_and_batch(x, logits, loc, scale);
  check_grad(kOp, grad, x, c10::fromIntArrayRefSlow(batch));
  const auto dtype = dtype_of(x, logits, loc, scale);
  const MixtureCall call(batch, dtype, x, logits, loc, scale);
  const Tensor grad_sets = cast(grad, dtype, x.device())->contiguous();
  const auto doubles = x.options().dtype(at::kDouble);
  Tensor gx = mask[0] ? new_output(call.x.sizes(), call.x.options()) : Tensor();
  Tensor glogits = mask[1] ? at::empty(call.log_pi.sizes(), doubles) : Tensor();
  Tensor gloc = mask[2] ? at::empty(call.loc.sizes(), doubles) : Tensor();
  Tensor gscale = mask[3] ? at::empty(call.inv_scale.sizes(), doubles) : Tensor();
  const auto data = [](const Tensor& t) { return t.defined() ? t.data_ptr<double>() : nullptr; };
  const MixtureGrads grads{gx.defined() ? gx.data_ptr() : nullptr, data(glogits), data(gloc), data(gscale)};
  on_device(x, [&](const auto& kernels, auto... launch) {
    kernels.mixture_log_likelihood_backward(call.args, grad_sets.data_ptr(), grads, launch...);
  });
  return {gradient_for(gx, x, dtype), gradient_for(glogits, logits, dtype), gradient_for(gloc, loc, dtype),
          gradient_for(gscale, scale, dtype)};
}

// ---- EM (fusedgan.mle's normal_mixture fit), as scikit-learn's: from the start given, each
// set until its lower bound changes by less than tol, or for max_iter iterations; the E step
// in x's dtype, the parameters in double. Returns the fit's logits (normalised log weights),
// loc and scale in double, and per set its last lower bound, iterations and convergence.
// Without autograd: EM takes no gradients.

constexpr const char* kEmOp = "_normal_mixture_em";
using EmResult = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

// The batch's shape, after checking every argument.
std::vector<int64_t> check_em(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale,
                              double tol, int64_t max_iter, double reg_covar) {
  const auto batch = check_and_batch(x, logits, loc, scale, kEmOp);
  TORCH_CHECK_VALUE(x.size(-2) >= 1 && logits.size(-1) >= 1, kEmOp,
                    ": needs at least one point and one component, got x ", x.sizes(), " and logits ", logits.sizes());
  TORCH_CHECK_VALUE(tol >= 0 && max_iter >= 1 && reg_covar >= 0, kEmOp,
                    ": needs tol >= 0, max_iter >= 1 and reg_covar >= 0, got ", tol, ", ", max_iter, " and ", reg_covar);
  return batch;
}

EmResult em_outputs(const std::vector<int64_t>& batch, int64_t k, int64_t d, const at::TensorOptions& like) {
  std::vector<int64_t> per_component = batch, per_coordinate = batch;
  per_component.push_back(k);
  per_coordinate.insert(per_coordinate.end(), {k, d});
  const auto doubles = like.dtype(at::kDouble);
  return {at::empty(per_component, doubles), at::empty(per_coordinate, doubles), at::empty(per_coordinate, doubles),
          at::empty(batch, doubles), at::empty(batch, like.dtype(at::kLong)), at::empty(batch, like.dtype(at::kBool))};
}

EmResult em(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale, double tol,
            int64_t max_iter, double reg_covar) {
  const auto batch = check_em(x, logits, loc, scale, tol, max_iter, reg_covar);
  check_positive(kEmOp, "scale", scale);
  const int64_t k = logits.size(-1), d = x.size(-1);
  EmResult outputs = em_outputs(batch, k, d, x.options());
  auto& [log_pi, loc_fit, scale_fit, lower_bound, iterations, converged] = outputs;
  log_pi.copy_(at::log_softmax(logits.to(at::kDouble), -1));  // the start, broadcast to the batch
  loc_fit.copy_(loc);
  scale_fit.copy_(scale);
  const Tensor points = laid_out(x, batch, 2, x.scalar_type());
  const MixtureEmArgs args{kernel_dtype(x.scalar_type()), c10::multiply_integers(batch), x.size(-2), k, d,
                           points.data_ptr(), tol, reg_covar, max_iter, log_pi.data_ptr<double>(),
                           loc_fit.data_ptr<double>(), scale_fit.data_ptr<double>(), lower_bound.data_ptr<double>(),
                           iterations.data_ptr<int64_t>(), converged.data_ptr<bool>()};
  if (args.sets > 0) on_device(x, [&](const auto& kernels, auto... launch) { kernels.mixture_em(args, launch...); });
  return outputs;
}

EmResult em_meta(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale, double tol,
                 int64_t max_iter, double reg_covar) {
  return em_outputs(check_em(x, logits, loc, scale, tol, max_iter, reg_covar), logits.size(-1), x.size(-1),
                    x.options());
}

Tensor forward_meta(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale) {
  return at::empty(check_and_batch(x, logits, loc, scale), x.options().dtype(dtype_of(x, logits, loc, scale)));
}

Gradients backward_meta(const Tensor& grad, const Tensor& x, const Tensor& logits, const Tensor& loc,
                        const Tensor& scale, OutputMask mask) {
  check_grad(kOp, grad, x, c10::fromIntArrayRefSlow(check_and_batch(x, logits, loc, scale)));
  const auto options = x.options().dtype(dtype_of(x, logits, loc, scale));
  const auto like = [&](bool wanted, const Tensor& t) { return wanted ? at::empty(t.sizes(), options) : Tensor(); };
  return {like(mask[0], x), like(mask[1], logits), like(mask[2], loc), like(mask[3], scale)};
}

Tensor call_forward(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale) {
  return call_op<"fusedgan::normal_mixture_log_likelihood", Tensor>(x, logits, loc, scale);
}

Gradients call_backward(const Tensor& grad, const Tensor& x, const Tensor& logits, const Tensor& loc,
                        const Tensor& scale, OutputMask mask) {
  return call_op<"fusedgan::_normal_mixture_log_likelihood_backward", Gradients>(grad, x, logits, loc, scale, mask);
}

// ---- Autograd

// The gradients in ATen ops (forming N x K x D), the formulas of csrc/math/mixture.h on whole
// tensors: differentiable again, and carrying tangents, for create_graph and forward-mode AD
// through the backward (torch.func.hessian). The tests hold the kernels' gradients to them.
// With responsibilities r = softmax over k of log pi_k + log N(x_n; mu_k, s_k) and z = (x - mu) / s:
//   d/dx = -g sum_k r z / s,  d/dmu = g sum_n r z / s,  d/ds = g sum_n r (z^2 - 1) / s,
//   d/dlogits = g (sum_n r - N pi).
Gradients differentiable_backward(const Tensor& grad, const Tensor& x, const Tensor& logits, const Tensor& loc,
                                  const Tensor& scale, OutputMask mask) {
  const Tensor log_pi = at::log_softmax(logits, -1);                                        // (*B, K)
  const Tensor s = scale.unsqueeze(-3);                                                      // (*B, 1, K, D)
  const Tensor z = (x.unsqueeze(-2) - loc.unsqueeze(-3)) / s;                                // (*B, N, K, D)
  const Tensor log_joint = log_pi.unsqueeze(-2) + (-0.5 * z * z - at::log(s) - math::kHalfLog2Pi).sum(-1);
  const Tensor r = at::softmax(log_joint, -1).unsqueeze(-1);                                 // (*B, N, K, 1)
  const Tensor g = grad.unsqueeze(-1).unsqueeze(-1);                                         // (*B, 1, 1)
  const auto gradient = [&](bool wanted, const Tensor& value, const Tensor& argument) {
    return wanted ? at::sum_to(value, argument.sizes()) : Tensor();
  };
  return {gradient(mask[0], -g * (r * z / s).sum(-2), x),
          gradient(mask[1], grad.unsqueeze(-1) * (r.squeeze(-1).sum(-2) - double(x.size(-2)) * log_pi.exp()), logits),
          gradient(mask[2], g * (r * z / s).sum(-3), loc), gradient(mask[3], g * (r * (z * z - 1) / s).sum(-3), scale)};
}

// The tangent per set, from the backward op on the primals (sets.h).
Tensor tangent(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale) {
  const auto batch = check_and_batch(primal_of(x), primal_of(logits), primal_of(loc), primal_of(scale));
  const auto backward = [](const Tensor& ones, const std::array<Tensor, 4>& at, const OutputMask& wanted) {
    const auto [gx, gl, gm, gs] = call_backward(ones, at[0], at[1], at[2], at[3], wanted);
    return std::array<Tensor, 4>{gx, gl, gm, gs};
  };
  // the dims of one set: (N, D), (K), (K, D), (K, D)
  return tangent_from_gradients<4>({x, logits, loc, scale}, {2, 1, 2, 2}, batch, dtype_of(x, logits, loc, scale),
                                   backward);
}

Tensor forward_autograd(const Tensor& x, const Tensor& logits, const Tensor& loc, const Tensor& scale) {
  Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    out = call_forward(x, logits, loc, scale);
    if (records_grad(x, logits, loc, scale)) {
      record_backward(out, "NormalMixtureLogLikelihoodBackward", {x, logits, loc, scale}, {}, {x, logits, loc, scale},
                      [](const variable_list& s, const Tensor& grad, const std::vector<bool>& wanted) {
                        auto [gx, gl, gm, gs] =
                            call_backward(grad, s[0], s[1], s[2], s[3], {wanted[0], wanted[1], wanted[2], wanted[3]});
                        return variable_list{gx, gl, gm, gs};
                      });
    }
  }
  if (has_tangents(x, logits, loc, scale)) set_tangent(out, tangent(x, logits, loc, scale));
  return out;
}

// Where a graph must be recorded or a tangent carried, the gradients are the ATen formulas'.
Gradients backward_autograd(const Tensor& grad, const Tensor& x, const Tensor& logits, const Tensor& loc,
                            const Tensor& scale, OutputMask mask) {
  if (!records_grad(grad, x, logits, loc, scale) && !has_tangents(grad, x, logits, loc, scale)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(grad, x, logits, loc, scale, mask);
  }
  check_grad(kOp, grad, x, c10::fromIntArrayRefSlow(check_and_batch(x, logits, loc, scale)));
  return differentiable_backward(grad, x, logits, loc, scale, mask);
}

void register_device_kernels(torch::Library& m) {
  m.impl("normal_mixture_log_likelihood", forward);
  m.impl("_normal_mixture_log_likelihood_backward", backward);
  m.impl(kEmOp, em);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("normal_mixture_log_likelihood(Tensor x, Tensor logits, Tensor loc, Tensor scale) -> Tensor");
  m.def(
      "_normal_mixture_log_likelihood_backward(Tensor grad, Tensor x, Tensor logits, Tensor loc, Tensor scale, "
      "bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "_normal_mixture_em(Tensor x, Tensor logits, Tensor loc, Tensor scale, float tol, int max_iter, float reg_covar) "
      "-> (Tensor logits, Tensor loc, Tensor scale, Tensor lower_bound, Tensor iterations, Tensor converged)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("normal_mixture_log_likelihood", forward_meta);
  m.impl("_normal_mixture_log_likelihood_backward", backward_meta);
  m.impl(kEmOp, em_meta);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("normal_mixture_log_likelihood", forward_autograd);
  m.impl("_normal_mixture_log_likelihood_backward", backward_autograd);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"normal_mixture_log_likelihood"}); }

}  // namespace fusedgan

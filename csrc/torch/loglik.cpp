// Batched log-likelihoods as torch operators: fusedgan::log_likelihood(family, x, a, b, c, dim)
// is the sum over `dim` of log f(x; a, b, c) for a family of families.def (its formula in
// csrc/math/loglik.h), with the parameters broadcast against x and every other dim a batch of
// independent data sets; fusedgan::_log_likelihood_backward gives d/dx and the parameters'
// gradients; fusedgan::_log_likelihood_and_grad gives the log-likelihoods and the parameters'
// gradients at grad = 1 in one pass over the data, which a forward whose data need no
// gradient keeps for its backward (maximum likelihood: the data are fixed).
#include <torch/library.h>

#include <ATen/ExpandUtils.h>

#include <string_view>

#include "../families.h"
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
using DimList = at::OptionalIntArrayRef;
using OutputMask = std::array<bool, 4>;  // x, a, b, c
using ParamMask = std::array<bool, kMaxParams>;  // a, b, c
using Params = std::array<OptionalTensor, kMaxParams>;
using Gradients = std::tuple<Tensor, Tensor, Tensor, Tensor>;

const FamilyInfo& family_info(c10::string_view name) {
  const FamilyInfo* info = find_family(std::string_view(name.data(), name.size()));
  TORCH_CHECK_VALUE(info, "log_likelihood: unknown family '", name, "'; known: ", family_names());
  return *info;
}

// "normal_log_likelihood": the public function, which the messages name.
const char* function_name(const FamilyInfo& info) {
  static const auto names = [] {
    std::vector<std::string> all;
    for (const auto& family : kFamilies) all.push_back(std::string(family.name) + "_log_likelihood");
    return all;
  }();
  return names[size_t(info.family)].c_str();
}

// ---- checks and layout

struct Shapes {
  std::vector<int64_t> full;      // x and the parameters broadcast together
  std::vector<int64_t> permuted;  // the data-set dims first, the summed dims last
  std::vector<int64_t> order;     // the permutation: permuted[i] = full[order[i]]
  std::vector<int64_t> output;    // the data-set dims
  size_t split;                   // how many data-set dims
};

// Broadcasts a parameter's shape into `full` (x's shape at first), naming it if it does not fit.
void broadcast_into(const char* op, std::vector<int64_t>& full, const char* name, const Tensor& t) {
  const int64_t rank = std::max<int64_t>(int64_t(full.size()), t.dim());
  std::vector<int64_t> merged(rank);
  for (int64_t i = 1; i <= rank; ++i) {
    const int64_t f = i <= int64_t(full.size()) ? full[full.size() - i] : 1;
    const int64_t n = i <= t.dim() ? t.size(-i) : 1;
    TORCH_CHECK_VALUE(f == n || f == 1 || n == 1, op, ": ", name, " of shape ", t.sizes(),
                      " does not broadcast with the data's shape ", at::IntArrayRef(full));
    merged[rank - i] = f == 1 ? n : f;
  }
  full = merged;
}

Shapes shapes_of(const FamilyInfo& info, const Tensor& x, const Params& params, DimList dim) {
  const char* op = function_name(info);
  check_floating(op, info.data, x);
  const int count = info.param_count;
  for (int k = 0; k < kMaxParams; ++k) {
    TORCH_CHECK_VALUE(bool(params[k]) == (k < count), op, ": the ", info.name, " family takes ", count,
                      count == 1 ? " parameter" : " parameters");
    if (!params[k]) continue;
    check_floating(op, info.params[k].name, *params[k]);
    check_operand_device(op, info.params[k].name, *params[k], x);
  }
  Shapes s;
  s.full = x.sizes().vec();
  for (int k = 0; k < count; ++k) broadcast_into(op, s.full, info.params[k].name, *params[k]);
  const int64_t rank = int64_t(s.full.size());
  std::vector<bool> summed(rank, !dim.has_value());
  if (dim) {
    for (int64_t d : *dim) {
      TORCH_CHECK_VALUE(d >= -std::max<int64_t>(rank, 1) && d < std::max<int64_t>(rank, 1), op, ": dim ", d,
                        " is out of range for data of ", rank, " dimensions");
      const int64_t wrapped = rank == 0 ? 0 : (d < 0 ? d + rank : d);
      TORCH_CHECK_VALUE(rank == 0 || !summed[wrapped], op, ": dim ", d, " appears twice");
      if (rank > 0) summed[wrapped] = true;
    }
  }
  for (int64_t i = 0; i < rank; ++i) {
    if (!summed[i]) s.order.push_back(i);
  }
  s.split = s.order.size();
  for (int64_t i = 0; i < rank; ++i) {
    if (summed[i]) s.order.push_back(i);
  }
  for (int64_t i : s.order) s.permuted.push_back(s.full[i]);
  s.output.assign(s.permuted.begin(), s.permuted.begin() + s.split);
  return s;
}

// A tensor's size along dim d of the full shape (1 where it has no such dim: broadcast).
int64_t size_along(const Shapes& s, const Tensor& t, int64_t d) {
  const int64_t offset = int64_t(s.full.size()) - t.dim();
  return d < offset ? 1 : t.size(d - offset);
}

// Whether a parameter has one value per data set in its shape (size 1 along every summed
// dim), not only in its strides: an expanded one has a gradient per element.
bool one_per_data_set(const Shapes& s, const Tensor& p) {
  for (size_t i = s.split; i < s.order.size(); ++i) {
    if (size_along(s, p, s.order[i]) != 1) return false;
  }
  return true;
}

at::ScalarType dtype_of(const Tensor& x, const Params& params) {
  auto dtype = x.scalar_type();
  for (const auto& p : params) {
    if (p) dtype = at::promote_types(dtype, p->scalar_type());
  }
  return dtype;
}

// A tensor on x's device, broadcast to the full shape and permuted, as a view.
OptionalTensor permuted_view(const OptionalTensor& t, const Shapes& s, at::ScalarType dtype, c10::Device device) {
  if (!t) return std::nullopt;
  return cast(t, dtype, device)->expand(s.full).permute(s.order);
}

// The data and parameters of a call as the kernels see them: broadcast, permuted (data sets
// first), cast to dtype and planned as rows.
struct LogLikelihoodCall {
  OptionalTensor x;
  Params params;
  Plan plan;
  LogLikelihoodArgs args;
  LogLikelihoodCall(const FamilyInfo& info, const Shapes& s, at::ScalarType dtype, const Tensor& x_,
                    const Params& params_)
      : x(permuted_view(x_, s, dtype, x_.device())),
        params{permuted_view(params_[0], s, dtype, x_.device()), permuted_view(params_[1], s, dtype, x_.device()),
               permuted_view(params_[2], s, dtype, x_.device())},
        plan(plan_rows(s.permuted, s.split, {&x, &params[0], &params[1], &params[2]})),
        args{kernel_dtype(dtype), info.family, plan.grid, plan.operands[0],
             {plan.operands[1], plan.operands[2], plan.operands[3]}} {}
};

// ---- CPU and CUDA

void check_supports(const FamilyInfo& info, const Params& params) {
  for (int k = 0; k < info.param_count; ++k) {
    if (info.params[k].support == math::Support::Positive) {
      check_positive(function_name(info), info.params[k].name, *params[k]);
    }
  }
}

Tensor forward(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
               const OptionalTensor& c, DimList dim) {
  const FamilyInfo& info = family_info(family);
  const Params params{a, b, c};
  const Shapes s = shapes_of(info, x, params, dim);
  check_supports(info, params);
  const auto dtype = dtype_of(x, params);
  const LogLikelihoodCall call(info, s, dtype, x, params);
  Tensor out = at::empty(s.output, x.options().dtype(dtype));
  on_device(x, [&](const auto& kernels, auto... launch) { kernels.log_likelihood(call.args, out.data_ptr(), launch...); });
  return out;
}

// A gradient computed in the permuted layout, back in the full layout, summed to the
// argument's shape.
Tensor to_argument(const Tensor& permuted, const Shapes& s, const Tensor& argument) {
  std::vector<int64_t> inverse(s.order.size());
  for (size_t i = 0; i < s.order.size(); ++i) inverse[s.order[i]] = int64_t(i);
  return at::sum_to(permuted.permute(inverse), argument.sizes()).contiguous();
}

void check_backward_grad(const FamilyInfo& info, const Tensor& grad, const Tensor& x, const Shapes& s) {
  check_grad(function_name(info), grad, x, c10::fromIntArrayRefSlow(s.output));
}

// The gradients for an incoming gradient of one value per data set (grad_rows, in the
// computation's dtype), and the log-likelihoods into `value` where it is defined.
Gradients gradients(const FamilyInfo& info, const Shapes& s, const Tensor& grad_rows, const Tensor& x,
                    const Params& params, OutputMask mask, const Tensor& value) {
  const auto dtype = dtype_of(x, params);
  const LogLikelihoodCall call(info, s, dtype, x, params);
  const auto options = x.options().dtype(dtype);
  const Tensor& a = *params[0];
  const OptionalTensor& b = params[1];
  const OptionalTensor& c = params[2];
  // A parameter constant along the summed dims gets its gradient summed per data set.
  LogLikelihoodGrads grads{};
  grads.value = value.defined() ? value.data_ptr() : nullptr;
  Tensor gx = mask[0] ? new_output(s.permuted, options) : Tensor();
  grads.x = gx.defined() ? gx.data_ptr() : nullptr;
  std::array<Tensor, kMaxParams> gp;
  for (int k = 0; k < kMaxParams; ++k) {
    if (!mask[k + 1] || !params[k]) continue;
    grads.per_row[k] = call.args.params[k].broadcast_col && one_per_data_set(s, *params[k]);
    gp[k] = grads.per_row[k] ? at::empty({call.args.grid.rows}, options) : new_output(s.permuted, options);
    grads.params[k] = gp[k].data_ptr();
  }
  on_device(x, [&](const auto& kernels, auto... launch) {
    kernels.log_likelihood_backward(call.args, grad_rows.data_ptr(), grads, launch...);
  });
  // Per-row gradients as the permuted shape with the summed dims of size 1.
  std::vector<int64_t> kept(s.permuted.begin(), s.permuted.begin() + s.split);
  kept.resize(s.permuted.size(), 1);
  const auto finish = [&](const Tensor& g, bool per_row, const Tensor& argument) {
    if (!g.defined()) return Tensor();
    return to_argument(per_row ? g.view(kept) : g, s, argument);
  };
  return {finish(gx, false, x), finish(gp[0], grads.per_row[0], a), b ? finish(gp[1], grads.per_row[1], *b) : Tensor(),
          c ? finish(gp[2], grads.per_row[2], *c) : Tensor()};
}

Gradients backward(const Tensor& grad, c10::string_view family, const Tensor& x, const Tensor& a,
                   const OptionalTensor& b, const OptionalTensor& c, DimList dim, OutputMask mask) {
  const FamilyInfo& info = family_info(family);
  const Params params{a, b, c};
  const Shapes s = shapes_of(info, x, params, dim);
  check_backward_grad(info, grad, x, s);
  const Tensor grad_rows = cast(grad, dtype_of(x, params), x.device())->contiguous();
  return gradients(info, s, grad_rows, x, params, mask, Tensor());
}

std::tuple<Tensor, Tensor, Tensor, Tensor> and_grad(c10::string_view family, const Tensor& x, const Tensor& a,
                                                    const OptionalTensor& b, const OptionalTensor& c, DimList dim,
                                                    ParamMask wanted) {
  const FamilyInfo& info = family_info(family);
  const Params params{a, b, c};
  const Shapes s = shapes_of(info, x, params, dim);
  check_supports(info, params);
  const Tensor value = at::empty(s.output, x.options().dtype(dtype_of(x, params)));
  const Tensor ones = at::ones({value.numel()}, value.options());
  const auto [gx, ga, gb, gc] = gradients(info, s, ones, x, params, {false, wanted[0], wanted[1], wanted[2]}, value);
  return {value, ga, gb, gc};
}

// ---- Meta

Tensor forward_meta(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
                    const OptionalTensor& c, DimList dim) {
  const Params params{a, b, c};
  return at::empty(shapes_of(family_info(family), x, params, dim).output, x.options().dtype(dtype_of(x, params)));
}

// An argument's gradient as the Meta kernels give it: undefined where not wanted (or the
// argument is absent), else empty, of the argument's shape in the computation's dtype.
Tensor meta_gradient(bool wanted, const OptionalTensor& argument, const at::TensorOptions& options) {
  return wanted && argument ? at::empty(argument->sizes(), options) : Tensor();
}

Gradients backward_meta(const Tensor& grad, c10::string_view family, const Tensor& x, const Tensor& a,
                        const OptionalTensor& b, const OptionalTensor& c, DimList dim, OutputMask mask) {
  const FamilyInfo& info = family_info(family);
  const Params params{a, b, c};
  check_backward_grad(info, grad, x, shapes_of(info, x, params, dim));
  const auto options = x.options().dtype(dtype_of(x, params));
  return {meta_gradient(mask[0], x, options), meta_gradient(mask[1], a, options), meta_gradient(mask[2], b, options),
          meta_gradient(mask[3], c, options)};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> and_grad_meta(c10::string_view family, const Tensor& x, const Tensor& a,
                                                         const OptionalTensor& b, const OptionalTensor& c, DimList dim,
                                                         ParamMask wanted) {
  const Tensor value = forward_meta(family, x, a, b, c, dim);
  return {value, meta_gradient(wanted[0], a, value.options()), meta_gradient(wanted[1], b, value.options()),
          meta_gradient(wanted[2], c, value.options())};
}

// ---- calls through the dispatcher

Tensor call_forward(c10::string_view family, const Tensor& x, const Params& p, DimList dim) {
  return call_op<"fusedgan::log_likelihood", Tensor>(family, x, *p[0], p[1], p[2], dim);
}

Gradients call_backward(const Tensor& grad, c10::string_view family, const Tensor& x, const Params& p, DimList dim,
                        OutputMask mask) {
  return call_op<"fusedgan::_log_likelihood_backward", Gradients>(grad, family, x, *p[0], p[1], p[2], dim, mask);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> call_and_grad(c10::string_view family, const Tensor& x, const Params& p,
                                                         DimList dim, ParamMask wanted) {
  return call_op<"fusedgan::_log_likelihood_and_grad", std::tuple<Tensor, Tensor, Tensor, Tensor>>(
      family, x, *p[0], p[1], p[2], dim, wanted);
}

// ---- Autograd

// The gradients in ATen ops on the family's partial derivatives (csrc/math/loglik.h on
// tensors, tensor_math.h), differentiable again: for create_graph.
Gradients differentiable_backward(const FamilyInfo& info, const Tensor& grad, const Tensor& x, const Params& params,
                                  DimList dim, OutputMask mask) {
  using tensor_math::Expr;
  const Shapes s = shapes_of(info, x, params, dim);
  check_backward_grad(info, grad, x, s);
  // grad has a value per data set: in the full layout, with size 1 where the summed dims were.
  std::vector<int64_t> per_set(s.full.size(), 1);
  for (size_t i = 0; i < s.split; ++i) per_set[s.order[i]] = s.full[s.order[i]];
  const auto dtype = dtype_of(x, params);
  const Tensor g = grad.reshape(per_set).to(tensor_math::computation_dtype(dtype));
  using tensor_math::computed_in;
  math::Partials<Expr> partials;
  math::with_log_pdf(info.family, [&](auto log_pdf) {
    partials = log_pdf.partials(computed_in(x, dtype), computed_in(params[0], dtype), computed_in(params[1], dtype),
                                computed_in(params[2], dtype));
  });
  const auto gradient = [&](bool wanted, const Expr& partial, const OptionalTensor& argument) {
    if (!wanted || !argument) return Tensor();
    return at::sum_to((g * partial.to_tensor(g)).expand(s.full), argument->sizes()).to(dtype);
  };
  return {gradient(mask[0], partials.x, x), gradient(mask[1], partials.params[0], params[0]),
          gradient(mask[2], partials.params[1], params[1]), gradient(mask[3], partials.params[2], params[2])};
}

// The tangent of the per-set sums: the family's partials at the primals (in ATen ops) times
// the arguments' tangents, summed over the summed dims.
Tensor tangent(const FamilyInfo& info, const Tensor& x, const Params& params, DimList dim) {
  const Tensor x_primal = primal_of(x);
  const Params primals{primal_of(params[0]), primal_of(params[1]), primal_of(params[2])};
  const Shapes s = shapes_of(info, x_primal, primals, dim);
  const auto dtype = dtype_of(x_primal, primals);
  using tensor_math::computed_in;
  math::Partials<tensor_math::Expr> partials;
  math::with_log_pdf(info.family, [&](auto log_pdf) {
    partials = log_pdf.partials(computed_in(x_primal, dtype), computed_in(primals[0], dtype),
                                computed_in(primals[1], dtype), computed_in(primals[2], dtype));
  });
  const auto compute = tensor_math::computation_dtype(dtype);
  Tensor total = at::zeros({}, x.options().dtype(compute));
  const auto add = [&](const OptionalTensor& argument, const tensor_math::Expr& partial) {
    const Tensor t = tangent_of(argument);
    if (t.defined()) total = total + partial.to_tensor(total) * t.to(compute);
  };
  add(x, partials.x);
  for (int k = 0; k < kMaxParams; ++k) add(params[k], partials.params[k]);
  const std::vector<int64_t> summed(s.order.begin() + s.split, s.order.end());
  const Tensor full = total.expand(s.full);
  return (summed.empty() ? full : full.sum(summed)).to(dtype);
}

// Which parameters' gradients the forward computes and keeps: all that need one, where the
// data need none and each such parameter has one value per data set (its gradient is then
// one sum per data set, which the backward scales by that set's incoming gradient). None
// under torch.func, which would not use them.
std::optional<ParamMask> kept_gradients(const FamilyInfo& info, const Tensor& x, const Params& params, DimList dim) {
  if (x.requires_grad() || transformed(x)) return std::nullopt;
  const Shapes s = shapes_of(info, x, params, dim);
  ParamMask wanted{};
  for (int k = 0; k < kMaxParams; ++k) {
    if (!params[k] || !params[k]->requires_grad()) continue;
    const Tensor& p = *params[k];
    if (transformed(p) || !one_per_data_set(s, p)) return std::nullopt;
    for (size_t i = 0; i < s.split; ++i) {  // and its gradient no sum over data sets
      if (size_along(s, p, s.order[i]) != s.full[s.order[i]]) return std::nullopt;
    }
    wanted[k] = true;
  }
  return wanted;
}

Tensor forward_autograd(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
                        const OptionalTensor& c, DimList dim) {
  Tensor out;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    const Params params{a, b, c};
    std::vector<Tensor> kept;  // none, or one per input (the data's undefined)
    if (records_grad(x, a, b, c)) {
      if (const auto wanted = kept_gradients(family_info(family), x, params, dim)) {
        kept.resize(4);
        std::tie(out, kept[1], kept[2], kept[3]) = call_and_grad(family, x, params, dim, *wanted);
      }
    }
    if (!out.defined()) out = call_forward(family, x, params, dim);
    if (records_grad(x, a, b, c)) {
      const std::optional<std::vector<int64_t>> dims = dim ? std::optional(dim->vec()) : std::nullopt;
      record_backward(out, "LogLikelihoodBackward", {x, a, b.value_or(Tensor()), c.value_or(Tensor())}, std::move(kept),
                      {x, a, b.value_or(Tensor()), c.value_or(Tensor())},
                      [name = std::string(family.data(), family.size()), dims](
                          const variable_list& saved, const Tensor& grad, const std::vector<bool>& wanted) {
                        const auto optional = [](const Tensor& t) { return t.defined() ? OptionalTensor(t) : std::nullopt; };
                        OutputMask mask{};
                        for (int i = 0; i < 4; ++i) mask[i] = wanted[i] && saved[i].defined();
                        auto [gx, ga, gb, gc] = call_backward(grad, name, saved[0],
                                                              Params{saved[1], optional(saved[2]), optional(saved[3])},
                                                              dims ? DimList(*dims) : DimList(), mask);
                        return variable_list{gx, ga, gb, gc};
                      });
    }
  }
  if (has_tangents(x, a, b, c)) set_tangent(out, tangent(family_info(family), x, Params{a, b, c}, dim));
  return out;
}

// Where a graph must be recorded or a tangent carried, the gradients are the family's partials
// in ATen ops.
Gradients backward_autograd(const Tensor& grad, c10::string_view family, const Tensor& x, const Tensor& a,
                            const OptionalTensor& b, const OptionalTensor& c, DimList dim, OutputMask mask) {
  if (!records_grad(grad, x, a, b, c) && !has_tangents(grad, x, a, b, c)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_backward(grad, family, x, Params{a, b, c}, dim, mask);
  }
  return differentiable_backward(family_info(family), grad, x, Params{a, b, c}, dim, mask);
}

// The _and_grad op is the first-order pass of the log-likelihood's autograd, not differentiable itself.
std::tuple<Tensor, Tensor, Tensor, Tensor> and_grad_autograd(c10::string_view family, const Tensor& x, const Tensor& a,
                                                             const OptionalTensor& b, const OptionalTensor& c,
                                                             DimList dim, ParamMask wanted) {
  check_first_order(records_grad(x, a, b, c) || has_tangents(x, a, b, c), "_log_likelihood_and_grad", "log_likelihood",
                    "value");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_and_grad(family, x, Params{a, b, c}, dim, wanted);
}

void register_device_kernels(torch::Library& m) {
  m.impl("log_likelihood", forward);
  m.impl("_log_likelihood_backward", backward);
  m.impl("_log_likelihood_and_grad", and_grad);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("log_likelihood(str family, Tensor x, Tensor a, Tensor? b=None, Tensor? c=None, int[]? dim=None) -> Tensor");
  m.def(
      "_log_likelihood_backward(Tensor grad, str family, Tensor x, Tensor a, Tensor? b, Tensor? c, int[]? dim, "
      "bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "_log_likelihood_and_grad(str family, Tensor x, Tensor a, Tensor? b, Tensor? c, int[]? dim, "
      "bool[3] params_mask) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_device_kernels(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_device_kernels(m); }

TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("log_likelihood", forward_meta);
  m.impl("_log_likelihood_backward", backward_meta);
  m.impl("_log_likelihood_and_grad", and_grad_meta);
}

TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("log_likelihood", forward_autograd);
  m.impl("_log_likelihood_backward", backward_autograd);
  m.impl("_log_likelihood_and_grad", and_grad_autograd);
}

TORCH_LIBRARY_IMPL(fusedgan, AutocastCUDA, m) { register_float32_autocast(m, {"log_likelihood"}); }

}  // namespace fusedgan

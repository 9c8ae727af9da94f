// Batched log-likelihoods as torch operators: fusedgan::log_likelihood(family, x, a, b, c, dim)
// is the sum over `dim` of log f(x; a, b, c) for the families of csrc/math/loglik.h, with
// the parameters broadcast against x and every other dim a batch of independent data sets;
// fusedgan::_log_likelihood_backward gives d/dx and the parameters' gradients. CPU, CUDA
// and Meta kernels, autograd in C++.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <ATen/ExpandUtils.h>
#include <ATen/WrapDimUtils.h>

#include <string_view>

#include "../families.h"
#include "../math/scalar.h"
#include "autograd_support.h"
#include "common.h"

namespace fusedgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using DimList = at::OptionalIntArrayRef;
using OutputMask = std::array<bool, 4>;  // x, a, b, c

constexpr const char* kOp = "log_likelihood";

const FamilyInfo& family_info(c10::string_view name) {
  const FamilyInfo* info = find_family(std::string_view(name.data(), name.size()));
  TORCH_CHECK_VALUE(info, kOp, ": unknown family '", name, "'; known: ", kFamilyNames);
  return *info;
}

using Params = std::array<OptionalTensor, kMaxParams>;

// ---- checks and layout

struct Shapes {
  std::vector<int64_t> full;      // x and the parameters broadcast together
  std::vector<int64_t> permuted;  // the data-set dims first, the summed dims last
  std::vector<int64_t> order;     // the permutation: permuted[i] = full[order[i]]
  std::vector<int64_t> output;    // the data-set dims
  size_t split;                   // how many data-set dims
};

// Broadcasts a parameter's shape into `full` (x's shape at first), naming it if it does not fit.
void broadcast_into(std::vector<int64_t>& full, const char* name, const Tensor& t) {
  const int64_t rank = std::max<int64_t>(int64_t(full.size()), t.dim());
  std::vector<int64_t> merged(rank);
  for (int64_t i = 1; i <= rank; ++i) {
    const int64_t f = i <= int64_t(full.size()) ? full[full.size() - i] : 1;
    const int64_t n = i <= t.dim() ? t.size(-i) : 1;
    TORCH_CHECK_VALUE(f == n || f == 1 || n == 1, kOp, ": ", name, " of shape ", t.sizes(),
                      " does not broadcast with the data's shape ", at::IntArrayRef(full));
    merged[rank - i] = f == 1 ? n : f;
  }
  full = merged;
}

Shapes shapes_of(const FamilyInfo& info, const Tensor& x, const Params& params, DimList dim) {
  check_floating(kOp, "x", x);
  const int count = param_count(info);
  for (int k = 0; k < kMaxParams; ++k) {
    TORCH_CHECK_VALUE(bool(params[k]) == (k < count), kOp, ": the ", info.name, " family takes ", count,
                      count == 1 ? " parameter" : " parameters");
    if (!params[k]) continue;
    check_floating(kOp, info.params[k], *params[k]);
    check_same_device(kOp, info.params[k], *params[k], x);
  }
  Shapes s;
  s.full = x.sizes().vec();
  for (int k = 0; k < count; ++k) broadcast_into(s.full, info.params[k], *params[k]);
  const int64_t rank = int64_t(s.full.size());
  std::vector<bool> summed(rank, !dim.has_value());
  if (dim) {
    for (int64_t d : *dim) {
      TORCH_CHECK_VALUE(d >= -std::max<int64_t>(rank, 1) && d < std::max<int64_t>(rank, 1), kOp, ": dim ", d,
                        " is out of range for data of ", rank, " dimensions");
      const int64_t wrapped = rank == 0 ? 0 : (d < 0 ? d + rank : d);
      TORCH_CHECK_VALUE(rank == 0 || !summed[wrapped], kOp, ": dim ", d, " appears twice");
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

at::ScalarType dtype_of(const Tensor& x, const Params& params) {
  auto dtype = x.scalar_type();
  for (const auto& p : params) {
    if (p) dtype = at::promote_types(dtype, p->scalar_type());
  }
  return dtype;
}

// Scales and rates must be positive: checked on CPU (on CUDA it would cost a host
// synchronisation; there a non-positive one gives NaN or -inf).
void check_positive(const char* name, const Tensor& t) {
  if (!t.is_cpu()) return;
  TORCH_CHECK_VALUE(!at::le(t, 0).any().item<bool>(), kOp, ": ", name, " must be positive");
}

// A tensor broadcast to the full shape and permuted, as a view.
OptionalTensor permuted_view(const OptionalTensor& t, const Shapes& s, at::ScalarType dtype) {
  if (!t) return std::nullopt;
  return cast(t, dtype)->expand(s.full).permute(s.order);
}

struct Call {
  OptionalTensor x;
  Params params;
  Plan plan;
  LogLikelihoodArgs args;
  Call(const FamilyInfo& info, const Shapes& s, at::ScalarType dtype, const Tensor& x_, const Params& params_)
      : x(permuted_view(x_, s, dtype)),
        params{permuted_view(params_[0], s, dtype), permuted_view(params_[1], s, dtype),
               permuted_view(params_[2], s, dtype)},
        plan(plan_rows(s.permuted, s.split, {&x, &params[0], &params[1], &params[2]})),
        args{kernel_dtype(dtype), info.family, plan.grid, plan.operands[0],
             {plan.operands[1], plan.operands[2], plan.operands[3]}} {}
};

// ---- CPU and CUDA

Tensor forward(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
               const OptionalTensor& c, DimList dim) {
  const FamilyInfo& info = family_info(family);
  const Params params{a, b, c};
  const Shapes s = shapes_of(info, x, params, dim);
  for (int k = 0; k < kMaxParams; ++k) {
    if (info.positive[k]) check_positive(info.params[k], *params[k]);
  }
  const auto dtype = dtype_of(x, params);
  const Call call(info, s, dtype, x, params);
  Tensor out = at::empty(s.output, x.options().dtype(dtype));
  on_device(
      x, [&] { cpu::kernels().log_likelihood(call.args, out.data_ptr()); },
      [&](cuda::Launch launch) { cuda::log_likelihood(call.args, out.data_ptr(), launch); });
  return out;
}

// A gradient computed in the permuted layout, back in the full layout, summed to the
// argument's shape.
Tensor to_argument(const Tensor& permuted, const Shapes& s, const Tensor& argument) {
  std::vector<int64_t> inverse(s.order.size());
  for (size_t i = 0; i < s.order.size(); ++i) inverse[s.order[i]] = int64_t(i);
  return at::sum_to(permuted.permute(inverse), argument.sizes()).contiguous();
}

using Gradients = std::tuple<Tensor, Tensor, Tensor, Tensor>;

Gradients backward(const Tensor& grad, c10::string_view family, const Tensor& x, const Tensor& a,
                   const OptionalTensor& b, const OptionalTensor& c, DimList dim, OutputMask mask) {
  const FamilyInfo& info = family_info(family);
  const Params params{a, b, c};
  const Shapes s = shapes_of(info, x, params, dim);
  const auto dtype = dtype_of(x, params);
  check_floating(kOp, "grad", grad);
  check_same_device(kOp, "grad", grad, x);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(s.output), kOp, ": grad of shape ", grad.sizes(),
              " does not match the output's shape ", at::IntArrayRef(s.output));
  const Call call(info, s, dtype, x, params);
  const Tensor grad_rows = cast(grad, dtype)->contiguous();
  const auto options = x.options().dtype(dtype);
  // A parameter constant along the summed dims gets its gradient summed per data set.
  LogLikelihoodGrads grads{};
  Tensor gx = mask[0] ? at::empty(s.permuted, options) : Tensor();
  grads.x = gx.defined() ? gx.data_ptr() : nullptr;
  std::array<Tensor, kMaxParams> gp;
  for (int k = 0; k < kMaxParams; ++k) {
    if (!mask[k + 1] || !params[k]) continue;
    grads.per_row[k] = call.args.params[k].broadcast_col;
    gp[k] = grads.per_row[k] ? at::empty({call.args.grid.rows}, options) : at::empty(s.permuted, options);
    grads.params[k] = gp[k].data_ptr();
  }
  on_device(
      x, [&] { cpu::kernels().log_likelihood_backward(call.args, grad_rows.data_ptr(), grads); },
      [&](cuda::Launch launch) { cuda::log_likelihood_backward(call.args, grad_rows.data_ptr(), grads, launch); });
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

// ---- Meta

Tensor forward_meta(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
                    const OptionalTensor& c, DimList dim) {
  const Params params{a, b, c};
  return at::empty(shapes_of(family_info(family), x, params, dim).output, x.options().dtype(dtype_of(x, params)));
}

Gradients backward_meta(const Tensor& grad, c10::string_view family, const Tensor& x, const Tensor& a,
                        const OptionalTensor& b, const OptionalTensor& c, DimList dim, OutputMask mask) {
  const Params params{a, b, c};
  shapes_of(family_info(family), x, params, dim);
  check_floating(kOp, "grad", grad);
  check_same_device(kOp, "grad", grad, x);
  const auto options = x.options().dtype(dtype_of(x, params));
  const auto like = [&](bool wanted, const OptionalTensor& t) { return wanted && t ? at::empty(t->sizes(), options) : Tensor(); };
  return {like(mask[0], x), like(mask[1], a), like(mask[2], b), like(mask[3], c)};
}

// ---- calls through the dispatcher

Tensor call_forward(c10::string_view family, const Tensor& x, const Params& p, DimList dim) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("fusedgan::log_likelihood", "")
                             .typed<Tensor(c10::string_view, const Tensor&, const Tensor&, const OptionalTensor&,
                                           const OptionalTensor&, DimList)>();
  return op.call(family, x, *p[0], p[1], p[2], dim);
}

Gradients call_backward(const Tensor& grad, c10::string_view family, const Tensor& x, const Params& p, DimList dim,
                        OutputMask mask) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("fusedgan::_log_likelihood_backward", "")
                             .typed<Gradients(const Tensor&, c10::string_view, const Tensor&, const Tensor&,
                                              const OptionalTensor&, const OptionalTensor&, DimList, OutputMask)>();
  return op.call(grad, family, x, *p[0], p[1], p[2], dim, mask);
}

// ---- Autograd

// log f in ATen ops (differentiable again), for create_graph.
Tensor log_pdf_in_aten(Family family, const Tensor& x, const std::vector<Tensor>& p) {
  switch (family) {
    case Family::Normal: {
      const Tensor z = (x - p[0]) / p[1];
      return -0.5 * z * z - at::log(p[1]) - math::kHalfLog2Pi;
    }
    case Family::Laplace:
      return -at::abs(x - p[0]) / p[1] - at::log(2 * p[1]);
    case Family::Exponential:
      return at::where(x < 0, -std::numeric_limits<double>::infinity(), at::log(p[0]) - p[0] * x);
    case Family::Bernoulli:
      return x * p[0] - at::softplus(p[0]);
    case Family::Poisson:
      return at::xlogy(x, p[0]) - p[0] - at::lgamma(x + 1);
    case Family::StudentT:
      break;
  }
  const Tensor z = (x - p[1]) / p[2];
  return at::lgamma((p[0] + 1) / 2) - at::lgamma(p[0] / 2) - 0.5 * at::log(p[0] * M_PI) - at::log(p[2]) -
         (p[0] + 1) / 2 * at::log1p(z * z / p[0]);
}

std::optional<std::vector<int64_t>> dims_of(DimList dim) {
  return dim ? std::optional<std::vector<int64_t>>(dim->vec()) : std::nullopt;
}
DimList dim_list(const std::optional<std::vector<int64_t>>& dims) { return dims ? DimList(*dims) : DimList(); }

class LogLikelihoodFunction : public torch::autograd::Function<LogLikelihoodFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const std::string& family, const Tensor& x, const Tensor& a,
                        const OptionalTensor& b, const OptionalTensor& c, std::optional<std::vector<int64_t>> dim) {
    ctx->save_for_backward({x, a, b.value_or(Tensor()), c.value_or(Tensor())});
    ctx->saved_data["family"] = family;
    ctx->saved_data["dim"] = dim ? c10::IValue(*dim) : c10::IValue();
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(family, x, Params{a, b, c}, dim_list(dim));
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const std::string family = ctx->saved_data["family"].toStringRef();
    const auto& dim_value = ctx->saved_data["dim"];
    const std::optional<std::vector<int64_t>> dim =
        dim_value.isNone() ? std::nullopt : std::optional<std::vector<int64_t>>(dim_value.toIntVector());
    const auto optional = [](const Tensor& t) { return t.defined() ? OptionalTensor(t) : std::nullopt; };
    const Params params{saved[1], optional(saved[2]), optional(saved[3])};
    OutputMask mask{};
    for (int i = 0; i < 4; ++i) mask[i] = saved[i].defined() && ctx->needs_input_grad(i);  // edges: x, a, b, c
    if (!at::GradMode::is_enabled()) {
      auto [gx, ga, gb, gc] = call_backward(grads[0], family, saved[0], params, dim_list(dim), mask);
      return {Tensor(), gx, ga, gb, gc, Tensor()};
    }
    // create_graph: differentiate log f written in ATen ops, keeping the graph.
    const FamilyInfo& info = family_info(family);
    const Shapes s = shapes_of(info, saved[0], params, dim_list(dim));
    std::vector<Tensor> defined_params;
    for (const auto& p : params) {
      if (p) defined_params.push_back(*p);
    }
    const Tensor log_f = log_pdf_in_aten(info.family, saved[0], defined_params);
    std::vector<int64_t> summed(s.order.begin() + s.split, s.order.end());
    const Tensor per_set = summed.empty() ? log_f.expand(s.full) : log_f.expand(s.full).sum(summed);  // sum({}) sums all
    const Tensor weighted = (per_set * grads[0]).sum();
    const auto results = differentiable_gradients(weighted, {saved[0], saved[1], saved[2], saved[3]},
                                                  {mask[0], mask[1], mask[2], mask[3]});
    return {Tensor(), results[0], results[1], results[2], results[3], Tensor()};
  }
};

Tensor forward_autograd(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
                        const OptionalTensor& c, DimList dim) {
  if (!records_grad(x, a, b, c)) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(family, x, Params{a, b, c}, dim);
  }
  return LogLikelihoodFunction::apply(std::string(family.data(), family.size()), x, a, b, c, dims_of(dim));
}

Gradients backward_autograd(const Tensor& grad, c10::string_view family, const Tensor& x, const Tensor& a,
                            const OptionalTensor& b, const OptionalTensor& c, DimList dim, OutputMask mask) {
  TORCH_CHECK(!records_grad(grad, x, a, b, c),
              "_log_likelihood_backward is not differentiable; differentiate log_likelihood with create_graph=True");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_backward(grad, family, x, Params{a, b, c}, dim, mask);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("log_likelihood(str family, Tensor x, Tensor a, Tensor? b=None, Tensor? c=None, int[]? dim=None) -> Tensor");
  m.def(
      "_log_likelihood_backward(Tensor grad, str family, Tensor x, Tensor a, Tensor? b, Tensor? c, int[]? dim, "
      "bool[4] output_mask) -> (Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) {
  m.impl("log_likelihood", forward);
  m.impl("_log_likelihood_backward", backward);
}
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) {
  m.impl("log_likelihood", forward);
  m.impl("_log_likelihood_backward", backward);
}
TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl("log_likelihood", forward_meta);
  m.impl("_log_likelihood_backward", backward_meta);
}
TORCH_LIBRARY_IMPL(fusedgan, Autograd, m) {
  m.impl("log_likelihood", forward_autograd);
  m.impl("_log_likelihood_backward", backward_autograd);
}

}  // namespace fusedgan

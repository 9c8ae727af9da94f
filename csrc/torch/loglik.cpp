// Batched log-likelihoods as torch operators: fusedgan::log_likelihood(family, x, a, b, dim)
// is the sum over `dim` of log f(x; a, b) for the families of csrc/math/loglik.h, with
// the parameters broadcast against x and every other dim a batch of independent data sets;
// fusedgan::_log_likelihood_backward gives d/dx and the parameters' gradients. CPU, CUDA
// and Meta kernels, autograd in C++.
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <ATen/ExpandUtils.h>
#include <ATen/WrapDimUtils.h>

#include <string_view>

#include "common.h"

namespace fusedgan {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using DimList = at::OptionalIntArrayRef;
using OutputMask = std::array<bool, 3>;

constexpr const char* kOp = "log_likelihood";

// A family: its name and its parameters' names (b empty for one-parameter families).
struct FamilyInfo {
  Family family;
  const char* name;
  const char* a;
  const char* b;
  bool a_positive;  // a scale or a rate
  bool b_positive;
};

constexpr FamilyInfo kFamilies[] = {
    {Family::Normal, "normal", "loc", "scale", false, true},
    {Family::Laplace, "laplace", "loc", "scale", false, true},
    {Family::Exponential, "exponential", "rate", "", true, false},
    {Family::Bernoulli, "bernoulli", "logits", "", false, false},
};

const FamilyInfo& family_info(c10::string_view name_view) {
  const std::string_view name(name_view.data(), name_view.size());
  for (const auto& info : kFamilies) {
    if (name == info.name) return info;
  }
  TORCH_CHECK_VALUE(false, kOp, ": unknown family '", name, "'; known: normal, laplace, exponential, bernoulli");
  return kFamilies[0];
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

Shapes shapes_of(const FamilyInfo& info, const Tensor& x, const Tensor& a, const OptionalTensor& b, DimList dim) {
  check_floating(kOp, "x", x);
  check_floating(kOp, info.a, a);
  check_same_device(kOp, info.a, a, x);
  if (b) {
    check_floating(kOp, info.b, *b);
    check_same_device(kOp, info.b, *b, x);
  }
  TORCH_CHECK_VALUE(bool(b) == (info.b[0] != '\0'), kOp, ": the ", info.name, " family takes ",
                    info.b[0] ? "two parameters" : "one parameter");
  Shapes s;
  s.full = x.sizes().vec();
  broadcast_into(s.full, info.a, a);
  if (b) broadcast_into(s.full, info.b, *b);
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

at::ScalarType dtype_of(const Tensor& x, const Tensor& a, const OptionalTensor& b) {
  auto dtype = at::promote_types(x.scalar_type(), a.scalar_type());
  return b ? at::promote_types(dtype, b->scalar_type()) : dtype;
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
  OptionalTensor x, a, b, grad;
  Plan plan;
  LogLikelihoodArgs args;
  Call(const FamilyInfo& info, const Shapes& s, at::ScalarType dtype, const Tensor& x_, const Tensor& a_,
       const OptionalTensor& b_)
      : x(permuted_view(x_, s, dtype)),
        a(permuted_view(a_, s, dtype)),
        b(permuted_view(b_, s, dtype)),
        plan(plan_rows(s.permuted, s.split, {&x, &a, &b})),
        args{kernel_dtype(dtype), info.family, plan.grid, plan.operands[0], plan.operands[1], plan.operands[2]} {}
};

// ---- CPU and CUDA

Tensor forward(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b, DimList dim) {
  const FamilyInfo& info = family_info(family);
  const Shapes s = shapes_of(info, x, a, b, dim);
  if (info.a_positive) check_positive(info.a, a);
  if (info.b_positive) check_positive(info.b, *b);
  const auto dtype = dtype_of(x, a, b);
  const Call call(info, s, dtype, x, a, b);
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

std::tuple<Tensor, Tensor, Tensor> backward(const Tensor& grad, c10::string_view family, const Tensor& x,
                                            const Tensor& a, const OptionalTensor& b, DimList dim, OutputMask mask) {
  const FamilyInfo& info = family_info(family);
  const Shapes s = shapes_of(info, x, a, b, dim);
  const auto dtype = dtype_of(x, a, b);
  check_floating(kOp, "grad", grad);
  TORCH_CHECK(grad.sizes() == at::IntArrayRef(s.output), kOp, ": grad of shape ", grad.sizes(),
              " does not match the output's shape ", at::IntArrayRef(s.output));
  const Call call(info, s, dtype, x, a, b);
  const Tensor grad_rows = cast(grad, dtype)->contiguous();
  const auto options = x.options().dtype(dtype);
  const int64_t rows = call.args.grid.rows;
  // A parameter constant along the summed dims gets its gradient summed per data set.
  const bool a_per_row = call.args.a.broadcast_col, b_per_row = b && call.args.b.broadcast_col;
  const auto buffer = [&](bool wanted, bool per_row) {
    if (!wanted) return Tensor();
    return per_row ? at::empty({rows}, options) : at::empty(s.permuted, options);
  };
  Tensor gx = buffer(mask[0], false), ga = buffer(mask[1], a_per_row), gb = buffer(mask[2] && b, b_per_row);
  const auto data = [](const Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; };
  const LogLikelihoodGrads grads{data(gx), data(ga), data(gb), ga.defined() && a_per_row, gb.defined() && b_per_row};
  on_device(
      x, [&] { cpu::kernels().log_likelihood_backward(call.args, grad_rows.data_ptr(), grads); },
      [&](cuda::Launch launch) { cuda::log_likelihood_backward(call.args, grad_rows.data_ptr(), grads, launch); });
  // Per-row gradients as the permuted shape with the summed dims of size 1.
  std::vector<int64_t> kept(s.permuted.begin(), s.permuted.begin() + s.split);
  kept.resize(s.permuted.size(), 1);
  const auto finish = [&](const Tensor& g, bool per_row, const OptionalTensor& argument) {
    if (!g.defined()) return Tensor();
    return to_argument(per_row ? g.view(kept) : g, s, *argument);
  };
  return {finish(gx, false, x), finish(ga, a_per_row, a), finish(gb, b_per_row, b)};
}

// ---- Meta

Tensor forward_meta(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b, DimList dim) {
  const FamilyInfo& info = family_info(family);
  return at::empty(shapes_of(info, x, a, b, dim).output, x.options().dtype(dtype_of(x, a, b)));
}

std::tuple<Tensor, Tensor, Tensor> backward_meta(const Tensor& grad, c10::string_view family, const Tensor& x,
                                                 const Tensor& a, const OptionalTensor& b, DimList dim,
                                                 OutputMask mask) {
  const FamilyInfo& info = family_info(family);
  shapes_of(info, x, a, b, dim);
  check_floating(kOp, "grad", grad);
  const auto options = x.options().dtype(dtype_of(x, a, b));
  const auto like = [&](bool wanted, const OptionalTensor& t) { return wanted && t ? at::empty(t->sizes(), options) : Tensor(); };
  return {like(mask[0], x), like(mask[1], a), like(mask[2], b)};
}

// ---- calls through the dispatcher

Tensor call_forward(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b, DimList dim) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("fusedgan::log_likelihood", "")
                             .typed<Tensor(c10::string_view, const Tensor&, const Tensor&, const OptionalTensor&, DimList)>();
  return op.call(family, x, a, b, dim);
}

std::tuple<Tensor, Tensor, Tensor> call_backward(const Tensor& grad, c10::string_view family, const Tensor& x,
                                                 const Tensor& a, const OptionalTensor& b, DimList dim,
                                                 OutputMask mask) {
  using Result = std::tuple<Tensor, Tensor, Tensor>;
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("fusedgan::_log_likelihood_backward", "")
                             .typed<Result(const Tensor&, c10::string_view, const Tensor&, const Tensor&,
                                           const OptionalTensor&, DimList, OutputMask)>();
  return op.call(grad, family, x, a, b, dim, mask);
}

// ---- Autograd

// log f in ATen ops (differentiable again), for create_graph.
Tensor log_pdf_in_aten(Family family, const Tensor& x, const Tensor& a, const Tensor& b) {
  switch (family) {
    case Family::Normal: {
      const Tensor z = (x - a) / b;
      return -0.5 * z * z - at::log(b) - 0.91893853320467274178;
    }
    case Family::Laplace:
      return -at::abs(x - a) / b - at::log(2 * b);
    case Family::Exponential:
      return at::where(x < 0, -std::numeric_limits<double>::infinity(), at::log(a) - a * x);
    case Family::Bernoulli:
      break;
  }
  return x * a - at::softplus(a);
}

class LogLikelihoodFunction : public torch::autograd::Function<LogLikelihoodFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const std::string& family, const Tensor& x, const Tensor& a,
                        const OptionalTensor& b, std::optional<std::vector<int64_t>> dim) {
    ctx->save_for_backward({x, a, b.value_or(Tensor())});
    ctx->saved_data["family"] = family;
    ctx->saved_data["dim"] = dim ? c10::IValue(*dim) : c10::IValue();
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(family, x, a, b, dim ? DimList(*dim) : DimList());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const std::string family = ctx->saved_data["family"].toStringRef();
    const auto& dim_value = ctx->saved_data["dim"];
    const std::optional<std::vector<int64_t>> dim =
        dim_value.isNone() ? std::nullopt : std::optional<std::vector<int64_t>>(dim_value.toIntVector());
    const OptionalTensor b = saved[2].defined() ? OptionalTensor(saved[2]) : std::nullopt;
    const OutputMask mask{ctx->needs_input_grad(0), ctx->needs_input_grad(1), b && ctx->needs_input_grad(2)};  // edges: x, a, b
    if (!at::GradMode::is_enabled()) {
      auto [gx, ga, gb] = call_backward(grads[0], family, saved[0], saved[1], b, dim ? DimList(*dim) : DimList(), mask);
      return {Tensor(), gx, ga, gb, Tensor()};
    }
    // create_graph: differentiate log f written in ATen ops, keeping the graph.
    const FamilyInfo& info = family_info(family);
    const Shapes s = shapes_of(info, saved[0], saved[1], b, dim ? DimList(*dim) : DimList());
    const Tensor log_f = log_pdf_in_aten(info.family, saved[0], saved[1], saved[2].defined() ? saved[2] : saved[1]);
    std::vector<int64_t> summed(s.order.begin() + s.split, s.order.end());
    const Tensor weighted = (log_f.expand(s.full).sum(summed) * grads[0]).sum();
    variable_list inputs, results(3);
    std::vector<int> slots;
    for (int i = 0; i < 3; ++i) {
      if (mask[i]) {
        inputs.push_back(saved[i]);
        slots.push_back(i);
      }
    }
    const auto d = torch::autograd::grad({weighted}, inputs, {}, /*retain_graph=*/true, /*create_graph=*/true,
                                         /*allow_unused=*/true);
    for (size_t k = 0; k < slots.size(); ++k) results[slots[k]] = d[k].defined() ? d[k] : at::zeros_like(inputs[k]);
    return {Tensor(), results[0], results[1], results[2], Tensor()};
  }
};

Tensor forward_autograd(c10::string_view family, const Tensor& x, const Tensor& a, const OptionalTensor& b,
                        DimList dim) {
  const bool records = at::GradMode::is_enabled() &&
                       (x.requires_grad() || a.requires_grad() || (b && b->requires_grad()));
  if (!records) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return call_forward(family, x, a, b, dim);
  }
  std::optional<std::vector<int64_t>> dims;
  if (dim) dims = dim->vec();
  return LogLikelihoodFunction::apply(std::string(family.data(), family.size()), x, a, b, dims);
}

std::tuple<Tensor, Tensor, Tensor> backward_autograd(const Tensor& grad, c10::string_view family, const Tensor& x,
                                                     const Tensor& a, const OptionalTensor& b, DimList dim,
                                                     OutputMask mask) {
  TORCH_CHECK(!(at::GradMode::is_enabled() && (grad.requires_grad() || x.requires_grad() || a.requires_grad() ||
                                              (b && b->requires_grad()))),
              "_log_likelihood_backward is not differentiable; differentiate log_likelihood with create_graph=True");
  at::AutoDispatchBelowADInplaceOrView guard;
  return call_backward(grad, family, x, a, b, dim, mask);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("log_likelihood(str family, Tensor x, Tensor a, Tensor? b=None, int[]? dim=None) -> Tensor");
  m.def(
      "_log_likelihood_backward(Tensor grad, str family, Tensor x, Tensor a, Tensor? b, int[]? dim, "
      "bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
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

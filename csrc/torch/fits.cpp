// The Newton fits' helpers (fusedgan.mle), on float64 tensors, without autograd (the fits take
// no gradients through them):
//   _log_sums(x): per data set (the last dim of x) the sums of log x and of log(1 - x),
//     (..., 2), in one pass: the sufficient statistics of the beta fit;
//   _digamma_and_trigamma(x): psi(x) and psi'(x) elementwise, in double vectors and in
//     parallel, where torch's are a scalar loop on one thread.
#include <torch/library.h>

#include "checks.h"
#include "device.h"

namespace fusedgan {
namespace {

void check_float64(const char* op, const Tensor& x) {
  TORCH_CHECK_VALUE(x.scalar_type() == at::kDouble, op, ": expected x to be float64, got ", x.scalar_type());
}

constexpr const char* kLogSums = "_log_sums";

std::vector<int64_t> log_sums_sizes(const Tensor& x) {
  check_float64(kLogSums, x);
  TORCH_CHECK_VALUE(x.dim() >= 1, kLogSums, ": expected x with the data points along its last dim, got a 0-dim tensor");
  std::vector<int64_t> sizes(x.sizes().begin(), x.sizes().end() - 1);
  sizes.push_back(2);
  return sizes;
}

Tensor log_sums(const Tensor& x) {
  Tensor out = at::empty(log_sums_sizes(x), x.options());
  if (x.size(-1) == 0) return out.zero_();
  const Tensor rows = x.contiguous();
  const LogSumArgs args{out.numel() / 2, rows.size(-1), rows.data_ptr<double>()};
  on_device(x, [&](const auto& kernels, auto... launch) { kernels.log_sums(args, out.data_ptr<double>(), launch...); });
  return out;
}

Tensor log_sums_meta(const Tensor& x) { return at::empty(log_sums_sizes(x), x.options()); }

constexpr const char* kPolygammas = "_digamma_and_trigamma";

std::tuple<Tensor, Tensor> polygamma_outputs(const Tensor& x) {
  check_float64(kPolygammas, x);
  return {at::empty(x.sizes(), x.options()), at::empty(x.sizes(), x.options())};
}

std::tuple<Tensor, Tensor> digamma_and_trigamma(const Tensor& x) {
  auto outputs = polygamma_outputs(x);
  auto& [digamma, trigamma] = outputs;
  if (x.numel() == 0) return outputs;
  const Tensor flat = x.contiguous();
  const PolygammaArgs args{flat.numel(), flat.data_ptr<double>(), digamma.data_ptr<double>(),
                           trigamma.data_ptr<double>()};
  on_device(x, [&](const auto& kernels, auto... launch) { kernels.digamma_and_trigamma(args, launch...); });
  return outputs;
}

void register_fit_helpers(torch::Library& m) {
  m.impl(kLogSums, log_sums);
  m.impl(kPolygammas, digamma_and_trigamma);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("_log_sums(Tensor x) -> Tensor");
  m.def("_digamma_and_trigamma(Tensor x) -> (Tensor digamma, Tensor trigamma)");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { register_fit_helpers(m); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { register_fit_helpers(m); }
TORCH_LIBRARY_IMPL(fusedgan, Meta, m) {
  m.impl(kLogSums, log_sums_meta);
  m.impl(kPolygammas, polygamma_outputs);
}

}  // namespace fusedgan

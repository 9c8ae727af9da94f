// _log_sums(x): per data set (the last dim of x, float64) the sums of log x and of
// log(1 - x), (..., 2), in one pass: the sufficient statistics of the beta fit
// (fusedgan.mle). Without autograd: the fit takes no gradients through it.
#include <torch/library.h>

#include "checks.h"
#include "device.h"

namespace fusedgan {
namespace {

constexpr const char* kOp = "_log_sums";

std::vector<int64_t> output_sizes(const Tensor& x) {
  TORCH_CHECK_VALUE(x.scalar_type() == at::kDouble, kOp, ": expected x to be float64, got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.dim() >= 1, kOp, ": expected x with the data points along its last dim, got a 0-dim tensor");
  std::vector<int64_t> sizes(x.sizes().begin(), x.sizes().end() - 1);
  sizes.push_back(2);
  return sizes;
}

Tensor log_sums(const Tensor& x) {
  Tensor out = at::empty(output_sizes(x), x.options());
  if (x.size(-1) == 0) return out.zero_();
  const Tensor rows = x.contiguous();
  const LogSumArgs args{out.numel() / 2, rows.size(-1), rows.data_ptr<double>()};
  on_device(x, [&](const auto& kernels, auto... launch) { kernels.log_sums(args, out.data_ptr<double>(), launch...); });
  return out;
}

Tensor log_sums_meta(const Tensor& x) { return at::empty(output_sizes(x), x.options()); }

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) { m.def("_log_sums(Tensor x) -> Tensor"); }
TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { m.impl(kOp, log_sums); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { m.impl(kOp, log_sums); }
TORCH_LIBRARY_IMPL(fusedgan, Meta, m) { m.impl(kOp, log_sums_meta); }

}  // namespace fusedgan

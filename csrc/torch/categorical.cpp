// fusedgan::categorical_log_likelihood(labels, logits, dim): the sum over `dim` of
// log softmax(logits)[label], the class axis being logits' last. Written with ATen ops
// (log_softmax, gather), registered CompositeImplicitAutograd: its autograd, Meta, CUDA and
// torch.func support come from those ops. Labels out of range raise on CPU.
#include <torch/library.h>

#include <ATen/ExpandUtils.h>

#include "autograd.h"
#include "checks.h"

namespace fusedgan {
namespace {

constexpr const char* kOp = "categorical_log_likelihood";

Tensor categorical_log_likelihood(const Tensor& labels, const Tensor& logits, at::OptionalIntArrayRef dim) {
  TORCH_CHECK(!at::isFloatingType(labels.scalar_type()) && !at::isComplexType(labels.scalar_type()) &&
                  labels.scalar_type() != at::kBool,
              kOp, ": expected labels to be an integer tensor, got ", labels.scalar_type());
  check_floating(kOp, "logits", logits);
  check_same_device(kOp, "logits", logits, labels);
  TORCH_CHECK_VALUE(logits.dim() >= 1, kOp, ": logits needs a class dimension (its last)");
  const c10::SymInt classes = logits.sym_size(-1);
  // Checked where the labels are real numbers on the CPU (not while traced or transformed).
  const auto traced = c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize});
  if (labels.is_cpu() && !labels.key_set().has_any(traced) && !transformed(labels) && labels.numel() > 0) {
    TORCH_CHECK_VALUE(labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() < classes, kOp,
                      ": labels must lie in [0, ", classes, ") for logits of ", classes, " classes");
  }
  const Tensor log_p = at::log_softmax(logits, -1);
  // labels and the logits' leading dims broadcast together; the class axis stays whole.
  const auto shape = at::infer_size_symdimvector(labels.sym_sizes(), log_p.sym_sizes().slice(0, log_p.dim() - 1));
  c10::SymDimVector expanded(shape.begin(), shape.end());
  expanded.push_back(classes);
  const Tensor picked =
      log_p.expand_symint(expanded).gather(-1, labels.expand_symint(shape).unsqueeze(-1)).squeeze(-1);
  if (!dim) return picked.sum();
  if (dim->empty()) return picked;  // a sum over no dims, as the other log-likelihoods take it
  for (int64_t d : *dim) {
    const int64_t rank = std::max<int64_t>(picked.dim(), 1);
    TORCH_CHECK_VALUE(d >= -rank && d < rank, kOp, ": dim ", d, " is out of range for the broadcast labels of ",
                      picked.dim(), " dimensions");
  }
  return picked.sum(*dim);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("categorical_log_likelihood(Tensor labels, Tensor logits, int[]? dim=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(fusedgan, CompositeImplicitAutograd, m) {
  m.impl("categorical_log_likelihood", categorical_log_likelihood);
}

// Under torch.func.vmap too, decomposed into the ATen ops, which have batching rules.
TORCH_LIBRARY_IMPL(fusedgan, FuncTorchBatchedDecomposition, m) {
  m.impl("categorical_log_likelihood", categorical_log_likelihood);
}

}  // namespace fusedgan

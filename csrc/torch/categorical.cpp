// fusedgan::categorical_log_likelihood(labels, logits, dim): the sum over `dim` of
// log softmax(logits)[label], the class axis being logits' last. Written with ATen ops,
// registered CompositeImplicitAutograd: its autograd, Meta, CUDA and torch.func support come
// from those ops. Labels out of range raise on CPU.
//
// Where the logits are constant along the summed dims (a data set's parameters), the sum is
// that of counts[c] * log_p[c] over the classes, the counts a histogram of the labels
// (fusedgan::_label_counts, one pass over them that checks their range too), and the logits'
// gradient is g (counts - n softmax): no tensor as large as the labels times the classes, as
// gathering from the expanded log_p would give its backward.
#include <torch/library.h>

#include <ATen/ExpandUtils.h>
#include <ATen/OpMathType.h>

#include <algorithm>
#include <vector>

#include "autograd.h"
#include "checks.h"
#include "device.h"
#include "dispatch.h"

namespace fusedgan {
namespace {

constexpr const char* kOp = "categorical_log_likelihood";

void check_labels(const Tensor& labels) {
  TORCH_CHECK(!at::isFloatingType(labels.scalar_type()) && !at::isComplexType(labels.scalar_type()) &&
                  labels.scalar_type() != at::kBool,
              kOp, ": expected labels to be an integer tensor, got ", labels.scalar_type());
}

void check_label_range(bool in_range, const c10::SymInt& classes) {
  TORCH_CHECK_VALUE(in_range, kOp, ": labels must lie in [0, ", classes, ") for logits of ", classes, " classes");
}

// fusedgan::_label_counts(labels, classes): labels (rows, points), of any integer dtype ->
// (rows, classes) float64 counts.
void check_label_count_labels(const Tensor& labels) {
  check_labels(labels);
  TORCH_CHECK_VALUE(labels.dim() == 2, "_label_counts: expected labels of 2 dims (rows, points), got ", labels.dim());
}

Tensor label_counts(const Tensor& labels, int64_t classes) {
  check_label_count_labels(labels);
  TORCH_CHECK_VALUE(classes >= 1, "_label_counts: classes must be at least 1, got ", classes);
  const Tensor flat = labels.to(at::kLong).contiguous();
  Tensor counts = at::empty({flat.size(0), classes}, flat.options().dtype(at::kDouble));
  const LabelCountArgs args{flat.size(0), flat.size(1), classes, flat.const_data_ptr<int64_t>(),
                            counts.mutable_data_ptr<double>()};
  check_label_range(on_device(flat, [&](const auto& kernels, auto... launch) { return kernels.label_counts(args, launch...); }),
                    classes);
  return counts;
}

Tensor label_counts_meta(const Tensor& labels, c10::SymInt classes) {
  check_label_count_labels(labels);
  return at::empty_symint({labels.sym_size(0), std::move(classes)}, labels.options().dtype(at::kDouble));
}

Tensor categorical_log_likelihood(const Tensor& labels, const Tensor& logits, at::OptionalIntArrayRef dim) {
  check_labels(labels);
  check_floating(kOp, "logits", logits);
  check_same_device(kOp, "logits", logits, labels);
  TORCH_CHECK_VALUE(logits.dim() >= 1, kOp, ": logits needs a class dimension (its last)");
  const c10::SymInt classes = logits.sym_size(-1);
  // labels and the logits' leading dims broadcast together; the class axis stays whole.
  const auto shape = at::infer_size_symdimvector(labels.sym_sizes(), logits.sym_sizes().slice(0, logits.dim() - 1));
  c10::SymDimVector expanded(shape.begin(), shape.end());
  expanded.push_back(classes);
  Tensor padded = logits;  // with the labels' rank (plus the classes)
  while (padded.dim() < static_cast<int64_t>(expanded.size())) padded = padded.unsqueeze(0);
  const Tensor labels_expanded = labels.to(at::kLong).expand_symint(shape);
  const int64_t rank = static_cast<int64_t>(shape.size());
  std::vector<int64_t> summed;  // the summed dims, ascending
  if (!dim) {
    for (int64_t d = 0; d < rank; ++d) summed.push_back(d);
  } else {
    for (int64_t d : *dim) {
      const int64_t bound = std::max<int64_t>(rank, 1);
      TORCH_CHECK_VALUE(d >= -bound && d < bound, kOp, ": dim ", d, " is out of range for the broadcast labels of ",
                        rank, " dimensions");
      if (rank > 0) summed.push_back(d < 0 ? d + rank : d);
    }
    std::sort(summed.begin(), summed.end());
    const auto repeated = std::adjacent_find(summed.begin(), summed.end());
    TORCH_CHECK_VALUE(repeated == summed.end(), kOp, ": dim ", repeated == summed.end() ? 0 : *repeated,
                      " appears more than once in dim");
  }
  // One set of logits per data set: size 1 along every summed dim (logits expanded there,
  // stride 0 but full size, have a gradient per element and take the other path).
  const bool per_data_set = !summed.empty() && std::all_of(summed.begin(), summed.end(), [&](int64_t d) {
    return padded.sym_size(d) == 1;
  });
  if (!per_data_set) {
    // Checked where the labels are real numbers on the CPU (not while traced or transformed).
    const auto traced = c10::DispatchKeySet({c10::DispatchKey::Python, c10::DispatchKey::Functionalize});
    if (labels.is_cpu() && !labels.key_set().has_any(traced) && !transformed(labels) && labels.numel() > 0) {
      const auto [low, high] = at::aminmax(labels);
      check_label_range(low.item<int64_t>() >= 0 && high.item<int64_t>() < classes, classes);
    }
    const Tensor log_p = at::log_softmax(padded, -1).expand_symint(expanded);
    const Tensor picked = log_p.gather(-1, labels_expanded.unsqueeze(-1)).squeeze(-1);
    if (!dim) return picked.sum();
    return dim->empty() ? picked : picked.sum(*dim);  // a sum over no dims, as the other log-likelihoods take it
  }
  // The kept dims first, then the summed ones flattened: (kept..., points).
  std::vector<int64_t> order;
  for (int64_t d = 0; d < rank; ++d) {
    if (!std::binary_search(summed.begin(), summed.end(), d)) order.push_back(d);
  }
  const int64_t kept = static_cast<int64_t>(order.size());
  order.insert(order.end(), summed.begin(), summed.end());
  Tensor points = labels_expanded.permute(order).flatten(kept);
  order.push_back(rank);  // the classes
  // The logits of each kept index (one along the summed dims), selected before the softmax
  // and expanded after it, so that the backward's tensors are no larger than the logits.
  Tensor logits_kept = padded.permute(order);
  for (int64_t k = 0; k < rank - kept; ++k) logits_kept = logits_kept.select(kept, 0);
  c10::SymDimVector counts_shape;
  for (int64_t k = 0; k < kept; ++k) counts_shape.push_back(shape[order[k]]);
  counts_shape.push_back(classes);
  const Tensor log_p_kept = at::log_softmax(logits_kept, -1).expand_symint(counts_shape);
  const Tensor sets = kept == 0 ? points.unsqueeze(0) : points.flatten(0, kept - 1);
  const Tensor counts = call_op<"fusedgan::_label_counts", Tensor>(sets, classes).view_symint(counts_shape);
  // In float at least (half's whole numbers stop at 2048). A class no label names adds
  // nothing, even where its log_p is -inf.
  const auto compute = at::toOpMathType(logits.scalar_type());
  const Tensor terms = counts.to(compute) * log_p_kept.to(compute);
  return at::where(counts == 0, at::zeros({}, terms.options()), terms).sum(-1).to(logits.scalar_type());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(fusedgan, m) {
  m.def("categorical_log_likelihood(Tensor labels, Tensor logits, int[]? dim=None) -> Tensor");
  m.def("_label_counts(Tensor labels, SymInt classes) -> Tensor");
}

TORCH_LIBRARY_IMPL(fusedgan, CPU, m) { m.impl("_label_counts", label_counts); }
TORCH_LIBRARY_IMPL(fusedgan, CUDA, m) { m.impl("_label_counts", label_counts); }
TORCH_LIBRARY_IMPL(fusedgan, Meta, m) { m.impl("_label_counts", label_counts_meta); }

TORCH_LIBRARY_IMPL(fusedgan, CompositeImplicitAutograd, m) {
  m.impl("categorical_log_likelihood", categorical_log_likelihood);
}

// Under torch.func.vmap too, decomposed into the ATen ops, which have batching rules.
TORCH_LIBRARY_IMPL(fusedgan, FuncTorchBatchedDecomposition, m) {
  m.impl("categorical_log_likelihood", categorical_log_likelihood);
}

}  // namespace fusedgan

// Entropy on CUDA: a thread per row for the row forms (probabilities are not checked, a
// negative one gives NaN), one launch elementwise for the binary form.
#include "../math/entropy.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

template <template <class> class RowFunction>
void for_rows(const RowArgs& a, const void* grad, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_row(a.rows, RowFunction<T>{{a, static_cast<const T*>(grad), static_cast<T*>(out)}}, launch);
  });
}

}  // namespace

void entropy(const RowArgs& a, void* out, Launch launch) { for_rows<math::EntropyRows>(a, nullptr, out, launch); }

void entropy_backward(const RowArgs& a, const void* grad, void* grad_input, Launch launch) {
  for_rows<math::EntropyRowsBackward>(a, grad, grad_input, launch);
}

void entropy_with_logits(const RowArgs& a, void* out, Launch launch) {
  for_rows<math::EntropyWithLogitsRows>(a, nullptr, out, launch);
}

void entropy_with_logits_backward(const RowArgs& a, const void* grad, void* grad_input, Launch launch) {
  for_rows<math::EntropyWithLogitsRowsBackward>(a, grad, grad_input, launch);
}

void binary_entropy_with_logits(const UnaryArgs& a, Reduction reduction, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    map_reduce<decltype(zero)>(a.grid, reduction, out, launch, math::BinaryEntropyWithLogits{a.scale}, a.input);
  });
}

void binary_entropy_with_logits_backward(const UnaryArgs& a, Operand grad, double grad_scale, void* grad_input,
                                         Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    map_pair<decltype(zero)>(a.grid, grad_input, math::BinaryEntropyWithLogitsGrad{a.scale * grad_scale}, nullptr,
                             math::BinaryEntropyWithLogitsGrad{0}, launch, grad, a.input);
  });
}

}  // namespace fusedgan::cuda

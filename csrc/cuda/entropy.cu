// Entropy of probability rows and of softmax rows on CUDA: a thread per row (probabilities are
// not checked, a negative one gives NaN). (The binary form is an elementwise loss: elementwise.cu.)
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

bool entropy(const RowArgs& a, void* out, Launch launch) {
  for_rows<math::EntropyRows>(a, nullptr, out, launch);
  return true;
}

void entropy_backward(const RowArgs& a, const void* grad, void* grad_input, Launch launch) {
  for_rows<math::EntropyRowsBackward>(a, grad, grad_input, launch);
}

void entropy_with_logits(const RowArgs& a, void* out, Launch launch) {
  for_rows<math::EntropyWithLogitsRows>(a, nullptr, out, launch);
}

void entropy_with_logits_backward(const RowArgs& a, const void* grad, void* grad_input, Launch launch) {
  for_rows<math::EntropyWithLogitsRowsBackward>(a, grad, grad_input, launch);
}

}  // namespace fusedgan::cuda

// Entropy of probability rows and of softmax rows: rows in parallel, each by the row functions
// of csrc/math/entropy.h. (The binary form is an elementwise loss: elementwise.cpp.)
#include <atomic>

#include "../math/entropy.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {

// Applies RowFunction<T> to every row; false if a row was outside the op's domain.
template <template <class> class RowFunction>
bool for_rows(const RowArgs& a, const void* grad, void* out) {
  std::atomic<bool> in_domain{true};
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const RowFunction<T> row_function{{a, static_cast<const T*>(grad), static_cast<T*>(out)}};
    for_each_row(a, [&](int64_t row) {
      if (!row_function(row)) in_domain.store(false, std::memory_order_relaxed);
    });
  });
  return in_domain.load();
}

}  // namespace

bool entropy(const RowArgs& a, void* out) { return for_rows<math::EntropyRows>(a, nullptr, out); }

void entropy_backward(const RowArgs& a, const void* grad, void* grad_input) {
  for_rows<math::EntropyRowsBackward>(a, grad, grad_input);
}

void entropy_with_logits(const RowArgs& a, void* out) { for_rows<math::EntropyWithLogitsRows>(a, nullptr, out); }

void entropy_with_logits_backward(const RowArgs& a, const void* grad, void* grad_input) {
  for_rows<math::EntropyWithLogitsRowsBackward>(a, grad, grad_input);
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

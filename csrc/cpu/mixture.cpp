// Normal mixtures: data sets in parallel, each by the sequential functions of
// csrc/math/mixture.h.
#include "../math/mixture.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {
// Sets in parallel, in tasks of about a chunk of arithmetic.
template <class SetFunction>
void for_each_set(const MixtureArgs& a, const SetFunction& set_function) {
  const int64_t work = std::max<int64_t>(1, a.n * a.k * a.d);
  const int64_t sets_per_task = std::max<int64_t>(1, kChunk / work);
  for_each_index((a.sets + sets_per_task - 1) / sets_per_task, a.sets * work > kChunk, [&](int64_t task) {
    const int64_t last = std::min(a.sets, (task + 1) * sets_per_task);
    for (int64_t set = task * sets_per_task; set < last; ++set) set_function(set);
  });
}
}  // namespace

void mixture_log_likelihood(const MixtureArgs& a, void* out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_set(a, math::MixtureForward<T>{a, static_cast<T*>(out)});
  });
}

void mixture_log_likelihood_backward(const MixtureArgs& a, const void* grad, const MixtureGrads& out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_set(a, math::MixtureBackward<T>{a, static_cast<const T*>(grad), out});
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

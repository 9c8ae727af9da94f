// Normal mixtures on CUDA: a thread per data set, by the functions of csrc/math/mixture.h.
#include "../math/mixture.h"
#include "loops.cuh"

namespace fusedgan::cuda {

void mixture_log_likelihood(const MixtureArgs& a, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_row(a.sets, math::MixtureForward<T>{a, static_cast<T*>(out)}, launch);
  });
}

void mixture_log_likelihood_backward(const MixtureArgs& a, const void* grad, const MixtureGrads& out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_row(a.sets, math::MixtureBackward<T>{a, static_cast<const T*>(grad), out}, launch);
  });
}

}  // namespace fusedgan::cuda

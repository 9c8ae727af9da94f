// What the Newton fits of fusedgan.mle take from the kernels: the terms the beta fit sums over
// a data set, its sufficient statistics log x and log(1 - x) (as log1p(-x): exact for x near
// 0), and the di- and trigammas of the iterations (digamma_and_trigamma, scalar.h). V is a
// double (CUDA) or the CPU's double vector.
#pragma once

#include "config.h"
#include "scalar.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

template <class V>
struct LogTerms {
  V log_x, log_complement;
};

template <class V>
FUSEDGAN_HOST_DEVICE LogTerms<V> log_terms(V x) {
  return {log(x), log1p(-x)};
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

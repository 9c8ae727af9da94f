// The log-likelihood of a diagonal normal mixture, one data set at a time:
//   sum_n log sum_k pi_k prod_d N(x_nd; mu_kd, s_kd),  pi = softmax(logits),
// with a_nk = log pi_k + sum_d log N(x_nd; mu_kd, s_kd) added by a log-sum-exp over k, so
// nothing of size N x K x D is ever formed. With responsibilities r_nk = exp(a_nk - lse_n)
// and incoming gradient g:
//   d/dx_nd = -g sum_k r_nk (x_nd - mu_kd) / s_kd^2,   d/dmu_kd = g sum_n r_nk (x_nd - mu_kd) / s_kd^2,
//   d/ds_kd = g sum_n r_nk ((x_nd - mu_kd)^2 / s_kd^3 - 1 / s_kd),   d/dlogits_k = g sum_n (r_nk - pi_k).
// Sequential loops in double, shared by the CPU (data sets in parallel) and CUDA (a thread
// per data set). The per-point log-sum-exp runs twice over k instead of keeping K values.
#pragma once

#include <cmath>

#include "../kernel_api.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

template <class T>
struct MixtureSet {
  const T* x;       // (N, D)
  const T* logits;  // (K)
  const T* loc;     // (K, D)
  const T* scale;   // (K, D)
  int64_t n, k, d;

  FUSEDGAN_HOST_DEVICE double log_normalizer() const {  // log sum_k e^logits_k
    double m = -HUGE_VAL, s = 0;
    for (int64_t j = 0; j < k; ++j) m = fmax(m, double(widen(logits[j])));
    for (int64_t j = 0; j < k; ++j) s += ::exp(double(widen(logits[j])) - m);
    return m + ::log(s);
  }
  // a_ij: log pi_j + log N(x_i; mu_j, s_j)
  FUSEDGAN_HOST_DEVICE double log_joint(int64_t i, int64_t j, double log_z) const {
    double a = double(widen(logits[j])) - log_z;
    for (int64_t c = 0; c < d; ++c) {
      const double s = widen(scale[j * d + c]);
      const double z = (double(widen(x[i * d + c])) - double(widen(loc[j * d + c]))) / s;
      a += -0.5 * z * z - ::log(s) - 0.91893853320467274178;
    }
    return a;
  }
  FUSEDGAN_HOST_DEVICE double point_log_likelihood(int64_t i, double log_z) const {
    double m = -HUGE_VAL;
    for (int64_t j = 0; j < k; ++j) m = fmax(m, log_joint(i, j, log_z));
    if (m == -HUGE_VAL) return m;
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += ::exp(log_joint(i, j, log_z) - m);
    return m + ::log(s);
  }
  FUSEDGAN_HOST_DEVICE double log_likelihood() const {
    const double log_z = log_normalizer();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += point_log_likelihood(i, log_z);
    return total;
  }
};

// Gradients of one data set's log-likelihood times g, written into (not added to) the
// outputs that are not null: grad_x (N, D) in the data's type; the parameters' gradients,
// sums over the N points, in double: grad_logits (K), grad_loc and grad_scale (K, D).
template <class T>
FUSEDGAN_HOST_DEVICE void mixture_backward(const MixtureSet<T>& set, double g, T* grad_x, double* grad_logits,
                                           double* grad_loc, double* grad_scale) {
  const double log_z = set.log_normalizer();
  const int64_t k = set.k, d = set.d;
  for (int64_t j = 0; j < k * d; ++j) {
    if (grad_loc) grad_loc[j] = 0;
    if (grad_scale) grad_scale[j] = 0;
  }
  for (int64_t j = 0; j < k && grad_logits; ++j) grad_logits[j] = 0;
  for (int64_t i = 0; i < set.n; ++i) {
    const double lse = set.point_log_likelihood(i, log_z);
    for (int64_t c = 0; c < d && grad_x; ++c) narrow_into(grad_x + i * d + c, compute_t<T>(0));
    for (int64_t j = 0; j < k; ++j) {
      const double r = ::exp(set.log_joint(i, j, log_z) - lse);
      if (grad_logits) grad_logits[j] += g * (r - ::exp(double(widen(set.logits[j])) - log_z));
      for (int64_t c = 0; c < d; ++c) {
        const double s = widen(set.scale[j * d + c]);
        const double diff = double(widen(set.x[i * d + c])) - double(widen(set.loc[j * d + c]));
        const double pull = g * r * diff / (s * s);
        if (grad_x) narrow_into(grad_x + i * d + c, compute_t<T>(double(widen(grad_x[i * d + c])) - pull));
        if (grad_loc) grad_loc[j * d + c] += pull;
        if (grad_scale) grad_scale[j * d + c] += g * r * (diff * diff / (s * s * s) - 1 / s);
      }
    }
  }
}

// One data set of a MixtureArgs.
template <class T>
FUSEDGAN_HOST_DEVICE MixtureSet<T> mixture_set(const MixtureArgs& a, int64_t set) {
  return {static_cast<const T*>(a.x) + set * a.n * a.d, static_cast<const T*>(a.logits) + set * a.k,
          static_cast<const T*>(a.loc) + set * a.k * a.d, static_cast<const T*>(a.scale) + set * a.k * a.d,
          a.n, a.k, a.d};
}

// The per-set work of the forward and the backward, as functions of the set's index.
template <class T>
struct MixtureForward {
  MixtureArgs a;
  T* out;
  FUSEDGAN_HOST_DEVICE void operator()(int64_t set) const {
    narrow_into(out + set, compute_t<T>(mixture_set<T>(a, set).log_likelihood()));
  }
};

template <class T>
struct MixtureBackward {
  MixtureArgs a;
  const T* grad;
  MixtureGrads out;
  FUSEDGAN_HOST_DEVICE void operator()(int64_t set) const {
    const auto at = [set](double* p, int64_t size) { return p ? p + set * size : nullptr; };
    mixture_backward(mixture_set<T>(a, set), double(widen(grad[set])),
                     out.x ? static_cast<T*>(out.x) + set * a.n * a.d : nullptr, at(out.logits, a.k),
                     at(out.loc, a.k * a.d), at(out.scale, a.k * a.d));
  }
};

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

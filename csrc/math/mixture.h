// The log-likelihood of a diagonal normal mixture, one data set at a time:
//   sum_n log sum_k pi_k prod_d N(x_nd; mu_kd, s_kd),  pi = softmax(logits),
// with a_nk = log pi_k + sum_d log N(x_nd; mu_kd, s_kd) added by a log-sum-exp over k, so
// nothing of size N x K x D is ever formed. With responsibilities r_nk = exp(a_nk - lse_n)
// and incoming gradient g:
//   d/dx_nd = -g sum_k r_nk (x_nd - mu_kd) / s_kd^2,   d/dmu_kd = g sum_n r_nk (x_nd - mu_kd) / s_kd^2,
//   d/ds_kd = g sum_n r_nk ((x_nd - mu_kd)^2 / s_kd^3 - 1 / s_kd),   d/dlogits_k = g sum_n (r_nk - pi_k).
// Sequential loops in double, shared by the CPU (data sets in parallel) and CUDA (a thread
// per data set). The caller precomputes per component log w_k = log pi_k - sum_d log s_kd -
// D log(2 pi)/2 and 1/s_kd, so a point's a_nk costs D multiply-adds; the forward adds its
// log-sum-exp online in one pass over k.
#pragma once

#include <cmath>

#include "../kernel_api.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

template <class T>
struct MixtureSet {
  const T* x;                // (N, D)
  const T* loc;              // (K, D)
  const double* log_weight;  // (K): log w_k
  const double* log_pi;      // (K)
  const double* inv_scale;   // (K, D)
  int64_t n, k, d;

  // a_ij = log pi_j + log N(x_i; mu_j, s_j)
  FUSEDGAN_HOST_DEVICE double log_joint(int64_t i, int64_t j) const {
    double squares = 0;
    for (int64_t c = 0; c < d; ++c) {
      const double z = (double(widen(x[i * d + c])) - double(widen(loc[j * d + c]))) * inv_scale[j * d + c];
      squares += z * z;
    }
    return log_weight[j] - 0.5 * squares;
  }
  // log sum_j e^a_ij, added online: the running maximum rescales the running sum.
  FUSEDGAN_HOST_DEVICE double point_log_likelihood(int64_t i) const {
    double m = -HUGE_VAL, s = 0;
    for (int64_t j = 0; j < k; ++j) {
      const double a = log_joint(i, j);
      if (a > m) {
        s = s * ::exp(m - a) + 1;
        m = a;
      } else {
        s += ::exp(a - m);
      }
    }
    return m == -HUGE_VAL ? m : m + ::log(s);
  }
  FUSEDGAN_HOST_DEVICE double log_likelihood() const {
    double total = 0;
    for (int64_t i = 0; i < n; ++i) total += point_log_likelihood(i);
    return total;
  }
};

// Components are taken in blocks of this many, their terms kept in local arrays.
inline constexpr int64_t kMixtureBlock = 32;

// Gradients of one data set's log-likelihood times g, written into (not added to) the
// outputs that are not null: grad_x (N, D) in the data's type; the parameters' gradients,
// sums over the N points, in double: grad_logits (K), grad_loc and grad_scale (K, D).
// Per point: the log-sum-exp, then per block of components g r_nk, and one pass over the
// block that updates the parameters' sums and adds the point's d/dx in double (stored
// once per block). With at most kMixtureBlock components the log-joints of the first pass
// are kept for the second. d/dlogits_k = g (sum_n r_nk - N pi_k) takes pi_k once per set.
template <class T>
FUSEDGAN_HOST_DEVICE void mixture_backward(const MixtureSet<T>& set, double g, T* grad_x, double* grad_logits,
                                           double* grad_loc, double* grad_scale) {
  const int64_t k = set.k, d = set.d;
  for (int64_t j = 0; j < k * d; ++j) {
    if (grad_loc) grad_loc[j] = 0;
    if (grad_scale) grad_scale[j] = 0;
  }
  for (int64_t j = 0; j < k && grad_logits; ++j) grad_logits[j] = 0;
  for (int64_t j = 0; j < set.n * d && grad_x && k == 0; ++j) narrow_into(grad_x + j, compute_t<T>(0));
  const bool one_block = k <= kMixtureBlock;
  double log_joints[kMixtureBlock];  // a_nk of the only block
  double weights[kMixtureBlock];     // g r_nk of the block at hand
  for (int64_t i = 0; i < set.n; ++i) {
    double lse;
    if (one_block) {
      double m = -HUGE_VAL, s = 0;
      for (int64_t j = 0; j < k; ++j) {
        log_joints[j] = set.log_joint(i, j);
        m = log_joints[j] > m ? log_joints[j] : m;
      }
      for (int64_t j = 0; j < k; ++j) s += ::exp(log_joints[j] - m);
      lse = m == -HUGE_VAL ? m : m + ::log(s);
    } else {
      lse = set.point_log_likelihood(i);
    }
    for (int64_t first = 0; first < k; first += kMixtureBlock) {
      const int64_t count = k - first < kMixtureBlock ? k - first : kMixtureBlock;
      for (int64_t b = 0; b < count; ++b) {
        const double a = one_block ? log_joints[b] : set.log_joint(i, first + b);
        weights[b] = g * ::exp(a - lse);
        if (grad_logits) grad_logits[first + b] += weights[b];
      }
      for (int64_t c = 0; c < d; ++c) {
        const double x = double(widen(set.x[i * d + c]));
        double pull_x = 0;
        for (int64_t b = 0; b < count; ++b) {
          const int64_t at = (first + b) * d + c;
          const double inv_s = set.inv_scale[at];
          const double z = (x - double(widen(set.loc[at]))) * inv_s;
          const double pull = weights[b] * z * inv_s;  // g r (x - mu) / s^2
          pull_x += pull;
          if (grad_loc) grad_loc[at] += pull;
          if (grad_scale) grad_scale[at] += weights[b] * (z * z - 1) * inv_s;  // g r ((x - mu)^2 / s^3 - 1 / s)
        }
        if (grad_x) {
          const double before = first == 0 ? 0.0 : double(widen(grad_x[i * d + c]));
          narrow_into(grad_x + i * d + c, compute_t<T>(before - pull_x));
        }
      }
    }
  }
  for (int64_t j = 0; j < k && grad_logits; ++j) grad_logits[j] -= g * double(set.n) * ::exp(set.log_pi[j]);
}

// One data set of a MixtureArgs.
template <class T>
FUSEDGAN_HOST_DEVICE MixtureSet<T> mixture_set(const MixtureArgs& a, int64_t set) {
  return {static_cast<const T*>(a.x) + set * a.n * a.d, static_cast<const T*>(a.loc) + set * a.k * a.d,
          a.log_weight + set * a.k, a.log_pi + set * a.k, a.inv_scale + set * a.k * a.d, a.n, a.k, a.d};
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

// The log-likelihood of a diagonal normal mixture, one data set at a time:
//   sum_n log sum_k pi_k prod_d N(x_nd; mu_kd, s_kd),  pi = softmax(logits),
// with a_nk = log pi_k + sum_d log N(x_nd; mu_kd, s_kd) added by a log-sum-exp over k, so
// nothing of size N x K x D is ever formed. With responsibilities r_nk = exp(a_nk - lse_n)
// and incoming gradient g:
//   d/dx_nd = -g sum_k r_nk (x_nd - mu_kd) / s_kd^2,   d/dmu_kd = g sum_n r_nk (x_nd - mu_kd) / s_kd^2,
//   d/ds_kd = g sum_n r_nk ((x_nd - mu_kd)^2 / s_kd^3 - 1 / s_kd),   d/dlogits_k = g sum_n (r_nk - pi_k).
// The caller precomputes per component log w_k = log pi_k - sum_d log s_kd - D log(2 pi)/2
// and 1/s_kd, so a point's a_nk costs D multiply-adds.
// The per-point functions are templates over V: a double (one point, on CUDA) or one of the
// CPU's vectors (one point per lane: float, or double for float64).
#pragma once

#include <cmath>

#include "../kernel_args.h"
#include "scalar.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// Components are taken in blocks of this many, their terms kept in local arrays.
inline constexpr int64_t kMixtureBlock = 32;

// e^t, or 0 for t below -50: a point's term of a component relative to its largest, and
// its responsibility r_j = e^(a_j - lse). What is dropped changes no sum of terms (the
// largest is 1) and keeps the CPU's float arithmetic free of subnormals, many times slower;
// NaN is kept.
inline constexpr float kNegligibleLogTerm = -50.0f;

template <class V>
FUSEDGAN_HOST_DEVICE V exp_above_cutoff(V t) {
  const auto negligible = t < V(kNegligibleLogTerm);
  return select(negligible, V(0.0f), exp(select(negligible, V(0.0f), t)));
}

// A point in double (a CUDA thread's) skips the exp of a negligible term, and EM's E step its
// terms of the component: most of them where the components lie apart. (A vector's lanes
// take them all.)
FUSEDGAN_HOST_DEVICE double exp_above_cutoff(double t) { return t < kNegligibleLogTerm ? 0.0 : exp(t); }
FUSEDGAN_HOST_DEVICE bool skips(double r) { return r == 0.0; }
template <class V>
FUSEDGAN_HOST_DEVICE bool skips(const V&) {
  return false;
}

// EM's E step: for each coordinate of a point, its deviation from the component's mean
// weighted by the responsibility r.
template <class V>
struct Deviations {
  V first, second;  // r (x_c - mu_jc) and r (x_c - mu_jc)^2
};

template <class V>
FUSEDGAN_HOST_DEVICE Deviations<V> weighted_deviations(V x_c, V mu_jc, V r) {
  const V deviation = x_c - mu_jc;
  const V weighted = r * deviation;
  return {weighted, weighted * deviation};
}

// A point's log-likelihood m + log(s): m its largest a_j, s the sum of its terms e^(a_j - m),
// in [1, K] (0 where every a_j is -inf, NaN where one is). Sums over points can multiply the
// s's and take one log of many.
template <class V>
struct LogSumExp {
  V max, sum;
  FUSEDGAN_HOST_DEVICE V value() const { return max + log(sum); }  // -inf when every a_j is
};

// One data set: x in the data's type T, loc in L (T, or the CPU's float copy), the
// precomputed terms in S (double, or float for the CPU's float vectors).
template <class T, class S = double, class L = T>
struct MixtureSet {
  const T* x;           // (N, D)
  const L* loc;         // (K, D)
  const S* log_weight;  // (K): log w_k
  const S* inv_scale;   // (K, D)
  int64_t n, k, d;

  FUSEDGAN_HOST_DEVICE int64_t block_size(int64_t first) const {
    return k - first < kMixtureBlock ? k - first : kMixtureBlock;
  }

  // a_j for a point whose coordinate c is x(c).
  template <class V, class Point>
  FUSEDGAN_HOST_DEVICE V log_joint(const Point& x, int64_t j) const {
    V squares(0.0f);
    for (int64_t c = 0; c < d; ++c) {
      const V z = (x(c) - V(widen(loc[j * d + c]))) * V(inv_scale[j * d + c]);
      squares = squares + z * z;
    }
    return V(log_weight[j]) - V(0.5f) * squares;
  }

  // log sum_j e^a_j as its two parts, a block of components at a time: the block's maximum
  // rescales the running sum once per block. Where r is not null, leaves the last block's
  // responsibilities e^(a_j - lse) in it: its terms e^(a_j - max) over their sum, which spares
  // them an exp each (terms below e^-50 of the largest are 0).
  template <class V, class Point>
  FUSEDGAN_HOST_DEVICE LogSumExp<V> point_log_sum_exp(const Point& x, V* r = nullptr) const {
    V a[kMixtureBlock];
    V m(-HUGE_VALF), s(0.0f);
    int64_t count = 0;
    for (int64_t first = 0; first < k; first += kMixtureBlock) {
      count = block_size(first);
      V block_max(-HUGE_VALF);
      for (int64_t b = 0; b < count; ++b) {
        a[b] = log_joint<V>(x, first + b);
        block_max = select(a[b] > block_max, a[b], block_max);
      }
      const V new_max = select(block_max > m, block_max, m);
      const V shift = select(new_max == V(-HUGE_VALF), V(0.0f), new_max);  // no -inf - -inf
      if (first > 0) s = s * exp(m - shift);  // (the first block's running sum is 0)
      for (int64_t b = 0; b < count; ++b) {
        const V term = exp_above_cutoff(a[b] - shift);
        s = s + term;
        if (r) r[b] = term;
      }
      m = new_max;
    }
    if (r) {
      const V inverse = V(1.0f) / s;
      for (int64_t b = 0; b < count; ++b) r[b] = r[b] * inverse;
    }
    return {m, s};
  }

  template <class V, class Point>
  FUSEDGAN_HOST_DEVICE V point_log_likelihood(const Point& x) const {
    return point_log_sum_exp<V>(x).value();
  }

  // Adds a point's E-step terms times `weight` (1, or 0 for a vector's padding lanes) to the
  // sums (indexed like the parameters): r_j to counts, r_j (x - mu_j) to deviations and
  // r_j (x - mu_j)^2 to squares; returns its log-likelihood's parts.
  template <class V, class Point>
  FUSEDGAN_HOST_DEVICE LogSumExp<V> add_point_statistics(const Point& x, V weight, V* counts, V* deviations,
                                                         V* squares) const {
    V last_r[kMixtureBlock];
    const LogSumExp<V> parts = point_log_sum_exp<V>(x, last_r);
    const V lse = k > kMixtureBlock ? parts.value() : V(0.0f);  // only the blocks before the last need it
    for (int64_t first = 0; first < k; first += kMixtureBlock) {
      const int64_t count = block_size(first);
      const bool last = first + kMixtureBlock >= k;  // its responsibilities kept
      for (int64_t b = 0; b < count; ++b) {
        const int64_t j = first + b;
        const V r = weight * (last ? last_r[b] : exp_above_cutoff(log_joint<V>(x, j) - lse));
        if (skips(r)) continue;
        counts[j] = counts[j] + r;
        for (int64_t c = 0; c < d; ++c) {
          const Deviations<V> terms = weighted_deviations(x(c), V(widen(loc[j * d + c])), r);
          deviations[j * d + c] = deviations[j * d + c] + terms.first;
          squares[j * d + c] = squares[j * d + c] + terms.second;
        }
      }
    }
    return parts;
  }

  // g r_j, component j's weight in a point's gradients, from its a_j and the point's
  // log-likelihood lse.
  template <class V>
  FUSEDGAN_HOST_DEVICE static V component_weight(V a_j, V lse, V g) {
    return g * exp(a_j - lse);
  }

  // The terms of coordinate c of a point x_c for component j (at = j d + c), given its weight
  // g r_j: pull = g r_j (x_c - mu_jc) / s_jc^2 (d/dmu's, and minus d/dx's) and
  // scale = g r_j ((x_c - mu_jc)^2 / s_jc^3 - 1 / s_jc) (d/ds's).
  template <class V>
  struct CoordinateTerms {
    V pull, scale;
  };
  template <class V>
  FUSEDGAN_HOST_DEVICE CoordinateTerms<V> coordinate_terms(V x_c, int64_t at, V weight) const {
    const V inv_s(inv_scale[at]);
    const V z = (x_c - V(widen(loc[at]))) * inv_s;
    return {weight * z * inv_s, weight * (z * z - V(1.0f)) * inv_s};
  }

  // Adds the point's gradient terms times g to the sums that are not null (each indexed
  // like its parameter): g r_j to logits_sums, g r_j (x - mu_j) / s_j^2 to loc_sums and
  // g r_j ((x - mu_j)^2 / s_j^3 - 1 / s_j) to scale_sums. d/dx goes out per coordinate and
  // block of components, as grad_x(c, sum over the block of g r_j (x_c - mu_jc) / s_jc^2,
  // whether the block is the first).
  template <class V, class Point, class GradX>
  FUSEDGAN_HOST_DEVICE void add_point_gradients(const Point& x, V g, V* logits_sums, V* loc_sums, V* scale_sums,
                                                const GradX& grad_x) const {
    V last_r[kMixtureBlock];
    V weights[kMixtureBlock];  // g r_j of the block at hand
    const V lse = point_log_sum_exp<V>(x, last_r).value();
    for (int64_t first = 0; first < k; first += kMixtureBlock) {
      const int64_t count = block_size(first);
      const bool last = first + kMixtureBlock >= k;  // its responsibilities kept
      for (int64_t b = 0; b < count; ++b) {
        weights[b] = last ? g * last_r[b] : component_weight(log_joint<V>(x, first + b), lse, g);
        if (logits_sums) logits_sums[first + b] = logits_sums[first + b] + weights[b];
      }
      for (int64_t c = 0; c < d; ++c) {
        const V x_c = x(c);
        V pull_x(0.0f);
        for (int64_t b = 0; b < count; ++b) {
          const int64_t at = (first + b) * d + c;
          const CoordinateTerms<V> terms = coordinate_terms(x_c, at, weights[b]);
          pull_x = pull_x + terms.pull;
          if (loc_sums) loc_sums[at] = loc_sums[at] + terms.pull;
          if (scale_sums) scale_sums[at] = scale_sums[at] + terms.scale;
        }
        grad_x(c, pull_x, first == 0);
      }
    }
  }
};

// One data set of a MixtureArgs.
template <class T>
FUSEDGAN_HOST_DEVICE MixtureSet<T> mixture_set(const MixtureArgs& a, int64_t set) {
  return {static_cast<const T*>(a.x) + set * a.n * a.d, static_cast<const T*>(a.loc) + set * a.k * a.d,
          a.log_weight + set * a.k, a.inv_scale + set * a.k * a.d, a.n, a.k, a.d};
}

// d/dlogits_j = g (sum_n r_nj - N pi_j): the second term, of component j of set `set`.
FUSEDGAN_HOST_DEVICE double expected_count(const MixtureArgs& a, int64_t set, int64_t j, double g) {
  return g * double(a.n) * exp(a.log_pi[set * a.k + j]);
}

// Takes the second terms from grad_logits once it holds the sums g sum_n r_nj of set `set`.
FUSEDGAN_HOST_DEVICE void subtract_expected_counts(const MixtureArgs& a, int64_t set, double g, double* grad_logits) {
  for (int64_t j = 0; j < a.k; ++j) grad_logits[j] -= expected_count(a, set, j, g);
}

// ---- EM (the normal mixture's fit), as scikit-learn's GaussianMixture(covariance_type="diag").
// A set's fit so far is in double: log pi (K, normalised), loc and scale (K, D).

// The E step's parameters of a set from its fit so far: loc rounded to the data's type T (the
// E step's sums are about it), log w_j = log pi_j - sum_c log s_jc - D log(2 pi)/2 and 1/s_jc.
template <class T>
FUSEDGAN_HOST_DEVICE void em_step_terms(int64_t k, int64_t d, const double* log_pi, const double* loc,
                                        const double* scale, T* loc_t, double* log_weight, double* inv_scale) {
  for (int64_t j = 0; j < k; ++j) {
    double log_scales = 0.0;
    for (int64_t at = j * d; at < (j + 1) * d; ++at) {
      narrow_into(loc_t + at, compute_t<T>(loc[at]));
      log_scales += log(scale[at]);
      inv_scale[at] = 1.0 / scale[at];
    }
    log_weight[j] = log_pi[j] - log_scales - double(d) * kHalfLog2Pi;
  }
}

// The M step of a set from the E step's sums about loc_t: counts (K) sum_n r_nj, deviations
// (K, D) sum_n r_nj (x_nc - mu_jc) and squares (K, D) sum_n r_nj (x_nc - mu_jc)^2. As
// scikit-learn's, 10 eps is added to each count, so that an empty component keeps finite
// parameters, and reg_covar to the variances.
template <class T>
FUSEDGAN_HOST_DEVICE void em_maximisation(int64_t k, int64_t d, const double* counts, const double* deviations,
                                          const double* squares, const T* loc_t, double reg_covar, double* log_pi,
                                          double* loc, double* scale) {
  constexpr double kCountFloor = 10 * 2.220446049250313e-16;  // 10 eps of double
  double total = 0.0;
  for (int64_t j = 0; j < k; ++j) total += counts[j] + kCountFloor;
  for (int64_t j = 0; j < k; ++j) {
    const double count = counts[j] + kCountFloor;
    log_pi[j] = log(count / total);
    for (int64_t at = j * d; at < (j + 1) * d; ++at) {
      const double shift = deviations[at] / count;
      loc[at] = double(widen(loc_t[at])) + shift;
      scale[at] = ::sqrt(squares[at] / count - shift * shift + reg_covar);
    }
  }
}

// Whether EM stops a set after `iteration`, whose lower bound (its E step's mean log-likelihood
// per point) went from `previous` to `bound`: it converged (changed by less than tol; never
// from the start's -inf, nor to NaN) or reached max_iter.
FUSEDGAN_HOST_DEVICE bool em_stops(double previous, double bound, double tol, int64_t iteration, int64_t max_iter,
                                   bool* converged) {
  *converged = abs(bound - previous) < tol;
  return *converged || iteration >= max_iter;
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

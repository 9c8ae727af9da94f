// Normal mixtures on CUDA, by the functions of csrc/math/mixture.h, in double. Forward: each
// data set's points summed as a row (loops.cuh: a group of threads per set, long sets in
// slices). Backward: a thread per point takes its log-likelihood and d/dx; then each
// component's gradients are sums over the points again, a row per (set, component), for a
// tile of coordinates at a time (so a thread's sums stay in registers whatever d is). EM's
// E step takes its sums per (set, component) the same way.
#include "../math/mixture.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

inline constexpr int kCoordinateTile = 4;
inline constexpr int kComponentSums = 1 + 2 * kCoordinateTile;  // g r, then the tile's pulls and scale terms

template <class T>
using Point = SetPoint<math::MixtureSet<T>>;

template <class T>
struct PointLogLikelihood {
  MixtureArgs a;
  __device__ void operator()(int64_t set, int64_t i, double (&sums)[1]) const {
    const math::MixtureSet<T> s = math::mixture_set<T>(a, set);
    sums[0] += s.template point_log_likelihood<double>(Point<T>{s, i});
  }
};

template <class T>
struct StoreTotal {
  T* out;
  __device__ void operator()(int64_t set, const double (&sums)[1]) const {
    math::narrow_into(out + set, math::compute_t<T>(sums[0]));
  }
};

// Point by point (over every set): its log-likelihood into lse (where not null), and
// d/dx = -sum_j pull_j, summed in double over all the components, a tile of coordinates at a time.
template <class T>
struct PointBackward {
  MixtureArgs a;
  const T* grad;
  T* grad_x;
  double* lse;
  __device__ void operator()(int64_t point, int, int) const {
    if (point < 0) return;
    const int64_t set = point / a.n, i = point - set * a.n;
    const math::MixtureSet<T> s = math::mixture_set<T>(a, set);
    const Point<T> x{s, i};
    const double log_likelihood = s.template point_log_likelihood<double>(x);
    if (lse) lse[point] = log_likelihood;
    if (!grad_x) return;
    const double g = math::widen(grad[set]);
    for (int64_t first = 0; first < s.d; first += kCoordinateTile) {
      const int64_t count = s.d - first < kCoordinateTile ? s.d - first : kCoordinateTile;
      double pulls[kCoordinateTile] = {};
      for (int64_t j = 0; j < s.k; ++j) {
        const double weight = s.component_weight(s.template log_joint<double>(x, j), log_likelihood, g);
        for (int64_t c = 0; c < count; ++c) pulls[c] += s.coordinate_terms(x(first + c), j * s.d + first + c, weight).pull;
      }
      for (int64_t c = 0; c < count; ++c) {
        math::narrow_into(grad_x + point * s.d + first + c, math::compute_t<T>(0.0 - pulls[c]));
      }
    }
  }
};

// A point's terms of component j's gradients (row = set * k + j), for the coordinates
// [first, first + kCoordinateTile) of the tile at hand.
template <class T>
struct ComponentTerms {
  MixtureArgs a;
  const T* grad;
  const double* lse;
  int64_t first;
  __device__ void operator()(int64_t row, int64_t i, double (&sums)[kComponentSums]) const {
    const int64_t set = row / a.k, j = row - set * a.k;
    const math::MixtureSet<T> s = math::mixture_set<T>(a, set);
    const Point<T> x{s, i};
    const double weight =
        s.component_weight(s.template log_joint<double>(x, j), lse[set * a.n + i], double(math::widen(grad[set])));
    sums[0] += weight;
    for (int64_t c = 0; c < kCoordinateTile && first + c < s.d; ++c) {
      const auto terms = s.coordinate_terms(x(first + c), j * s.d + first + c, weight);
      sums[1 + c] += terms.pull;
      sums[1 + kCoordinateTile + c] += terms.scale;
    }
  }
};

template <class T>
struct StoreComponentGradients {
  MixtureArgs a;
  const T* grad;
  MixtureGrads out;
  int64_t first;
  __device__ void operator()(int64_t row, const double (&sums)[kComponentSums]) const {
    const int64_t set = row / a.k, j = row - set * a.k;
    if (out.logits && first == 0) {
      out.logits[row] = sums[0] - math::expected_count(a, set, j, double(math::widen(grad[set])));
    }
    for (int64_t c = 0; c < kCoordinateTile && first + c < a.d; ++c) {
      if (out.loc) out.loc[row * a.d + first + c] = sums[1 + c];
      if (out.scale) out.scale[row * a.d + first + c] = sums[1 + kCoordinateTile + c];
    }
  }
};

// EM's E step: a set's sum of its points' log-likelihoods (taken into lse before).
struct StoredPointLogLikelihood {
  const double* lse;
  int64_t n;
  __device__ void operator()(int64_t set, int64_t i, double (&sums)[1]) const { sums[0] += lse[set * n + i]; }
};

struct StoreLogLikelihood {
  double* out;
  __device__ void operator()(int64_t set, const double (&sums)[1]) const { out[set] = sums[0]; }
};

// A point's E-step terms of component j (row = set * k + j): its responsibility r, then
// r (x_c - mu_jc) and r (x_c - mu_jc)^2 for the coordinates [first, first + kCoordinateTile).
template <class T>
struct ComponentStatisticsTerms {
  MixtureArgs a;
  const double* lse;
  int64_t first;
  __device__ void operator()(int64_t row, int64_t i, double (&sums)[kComponentSums]) const {
    const int64_t set = row / a.k, j = row - set * a.k;
    const math::MixtureSet<T> s = math::mixture_set<T>(a, set);
    const Point<T> x{s, i};
    const double r = math::exp_above_cutoff(s.template log_joint<double>(x, j) - lse[set * a.n + i]);
    sums[0] += r;
    for (int64_t c = 0; c < kCoordinateTile && first + c < s.d; ++c) {
      const auto terms = math::weighted_deviations(x(first + c), double(math::widen(s.loc[j * s.d + first + c])), r);
      sums[1 + c] += terms.first;
      sums[1 + kCoordinateTile + c] += terms.second;
    }
  }
};

struct StoreComponentStatistics {
  MixtureArgs a;
  MixtureStatistics out;
  int64_t first;
  __device__ void operator()(int64_t row, const double (&sums)[kComponentSums]) const {
    if (first == 0) out.counts[row] = sums[0];
    for (int64_t c = 0; c < kCoordinateTile && first + c < a.d; ++c) {
      out.deviations[row * a.d + first + c] = sums[1 + c];
      out.squares[row * a.d + first + c] = sums[1 + kCoordinateTile + c];
    }
  }
};

}  // namespace

// The points' log-likelihoods first (as the backward takes them), then each set's sum and
// each component's sums over the points, a tile of coordinates at a time.
void mixture_em_statistics(const MixtureArgs& a, const MixtureStatistics& out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    double* lse = a.sets * a.n > 0
                      ? static_cast<double*>(launch.workspace->allocate(a.sets * a.n * int64_t(sizeof(double))))
                      : nullptr;
    if (lse) for_each_row_group(a.sets * a.n, 1, PointBackward<T>{a, nullptr, nullptr, lse}, launch);
    sum_rows<1>(a.sets, a.n, StoredPointLogLikelihood{lse, a.n}, StoreLogLikelihood{out.log_likelihood}, launch);
    for (int64_t first = 0; first == 0 || first < a.d; first += kCoordinateTile) {
      sum_rows<kComponentSums>(a.sets * a.k, a.n, ComponentStatisticsTerms<T>{a, lse, first},
                               StoreComponentStatistics{a, out, first}, launch);
    }
  });
}

void mixture_log_likelihood(const MixtureArgs& a, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    sum_rows<1>(a.sets, a.n, PointLogLikelihood<T>{a}, StoreTotal<T>{static_cast<T*>(out)}, launch);
  });
}

// The gradients of each set's log-likelihood times grad[set], written into (not added to)
// the outputs that are not null: x's in the data's type, the parameters' in double.
void mixture_log_likelihood_backward(const MixtureArgs& a, const void* grad, const MixtureGrads& out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(grad);
    const bool parameters = out.logits || out.loc || out.scale;
    double* lse = parameters && a.sets * a.n > 0
                      ? static_cast<double*>(launch.workspace->allocate(a.sets * a.n * int64_t(sizeof(double))))
                      : nullptr;
    if (lse || out.x) for_each_row_group(a.sets * a.n, 1, PointBackward<T>{a, g, static_cast<T*>(out.x), lse}, launch);
    if (!parameters) return;
    for (int64_t first = 0; first == 0 || first < a.d; first += kCoordinateTile) {
      sum_rows<kComponentSums>(a.sets * a.k, a.n, ComponentTerms<T>{a, g, lse, first},
                               StoreComponentGradients<T>{a, g, out, first}, launch);
    }
  });
}

}  // namespace fusedgan::cuda

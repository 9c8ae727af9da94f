// Normal mixtures on CUDA, by the functions of csrc/math/mixture.h, in double. Forward: each
// data set's points summed as a row (loops.cuh: a group of threads per set, long sets in
// slices). Backward: a thread per point takes its log-likelihood and d/dx; then each
// component's gradients are sums over the points again, a row per (set, component), for a
// tile of coordinates at a time (so a thread's sums stay in registers whatever d is). EM's
// E step takes its sums per (set, component) the same way, and its M step a thread per set.
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

// ---- EM: the E step's parameters, its sums and each set's state, in the workspace.
template <class T>
struct EmState {
  MixtureEmArgs e;
  T* loc_t;             // (sets, k, d): loc rounded to T, what the E step's sums are about
  double* log_weight;   // (sets, k)
  double* inv_scale;    // (sets, k, d)
  double* lse;          // (sets, n): each point's log-likelihood
  double* log_likelihood, *counts, *deviations, *squares;  // the E step's sums: (sets), (sets, k), (sets, k, d) x 2
  double* bound;        // (sets): the last lower bound
  bool* running;        // (sets)

  __device__ math::MixtureSet<T> set(int64_t set) const {
    return {static_cast<const T*>(e.x) + set * e.n * e.d, loc_t + set * e.k * e.d, log_weight + set * e.k,
            inv_scale + set * e.k * e.d, e.n, e.k, e.d};
  }
  __device__ void prepare(int64_t set) const {
    const int64_t k = e.k, kd = e.k * e.d;
    math::em_step_terms(k, e.d, e.log_pi + set * k, e.loc + set * kd, e.scale + set * kd, loc_t + set * kd,
                        log_weight + set * k, inv_scale + set * kd);
  }
};

// Uninitialised scratch for `count` values, alive until the op returns.
template <class U>
U* allocate(Launch launch, int64_t count) {
  return static_cast<U*>(launch.workspace->allocate(count * int64_t(sizeof(U))));
}

template <class T>
struct StartSet {
  EmState<T> state;
  __device__ void operator()(int64_t set, int, int) const {
    if (set < 0) return;
    state.prepare(set);
    state.bound[set] = -HUGE_VAL;
    state.running[set] = true;
  }
};

// The E step, point by point: its log-likelihood into lse.
template <class T>
struct PointLogLikelihoods {
  EmState<T> state;
  __device__ void operator()(int64_t point, int, int) const {
    const int64_t set = point / state.e.n;
    if (point < 0 || !state.running[set]) return;
    const math::MixtureSet<T> s = state.set(set);
    state.lse[point] = s.template point_log_likelihood<double>(Point<T>{s, point - set * s.n});
  }
};

// A set's sum of its points' log-likelihoods.
template <class T>
struct StoredPointLogLikelihood {
  EmState<T> state;
  __device__ void operator()(int64_t set, int64_t i, double (&sums)[1]) const {
    if (state.running[set]) sums[0] += state.lse[set * state.e.n + i];
  }
};

template <class T>
struct StoreLogLikelihood {
  EmState<T> state;
  __device__ void operator()(int64_t set, const double (&sums)[1]) const { state.log_likelihood[set] = sums[0]; }
};

// A point's E-step terms of component j (row = set * k + j): its responsibility r, then
// r (x_c - mu_jc) and r (x_c - mu_jc)^2 for the coordinates [first, first + kCoordinateTile).
template <class T>
struct ComponentStatisticsTerms {
  EmState<T> state;
  int64_t first;
  __device__ void operator()(int64_t row, int64_t i, double (&sums)[kComponentSums]) const {
    const int64_t set = row / state.e.k, j = row - set * state.e.k;
    if (!state.running[set]) return;
    const math::MixtureSet<T> s = state.set(set);
    const Point<T> x{s, i};
    const double r = math::exp_above_cutoff(s.template log_joint<double>(x, j) - state.lse[set * s.n + i]);
    sums[0] += r;
    for (int64_t c = 0; c < kCoordinateTile && first + c < s.d; ++c) {
      const auto terms = math::weighted_deviations(x(first + c), double(math::widen(s.loc[j * s.d + first + c])), r);
      sums[1 + c] += terms.first;
      sums[1 + kCoordinateTile + c] += terms.second;
    }
  }
};

template <class T>
struct StoreComponentStatistics {
  EmState<T> state;
  int64_t first;
  __device__ void operator()(int64_t row, const double (&sums)[kComponentSums]) const {
    const int64_t d = state.e.d;
    if (first == 0) state.counts[row] = sums[0];
    for (int64_t c = 0; c < kCoordinateTile && first + c < d; ++c) {
      state.deviations[row * d + first + c] = sums[1 + c];
      state.squares[row * d + first + c] = sums[1 + kCoordinateTile + c];
    }
  }
};

// A running set's M step and stopping test, then the next E step's parameters.
template <class T>
struct UpdateSet {
  EmState<T> state;
  int64_t iteration;
  __device__ void operator()(int64_t set, int, int) const {
    if (set < 0 || !state.running[set]) return;
    const MixtureEmArgs& e = state.e;
    const int64_t k = e.k, kd = e.k * e.d;
    math::em_maximisation(k, e.d, state.counts + set * k, state.deviations + set * kd, state.squares + set * kd,
                          state.loc_t + set * kd, e.reg_covar, e.log_pi + set * k, e.loc + set * kd, e.scale + set * kd);
    const double previous = state.bound[set];
    state.bound[set] = state.log_likelihood[set] / double(e.n);
    if (math::em_stops(previous, state.bound[set], e.tol, iteration, e.max_iter, e.converged + set)) {
      e.lower_bound[set] = state.bound[set];
      e.iterations[set] = iteration;
      state.running[set] = false;
    } else {
      state.prepare(set);
    }
  }
};

}  // namespace

// EM's iterations, each a launch per step: the points' log-likelihoods, each set's sum and
// each component's sums over the points (a tile of coordinates at a time), then a thread per
// set for its M step. A set that stops returns at once from the later launches; the host
// never waits, so every fit takes max_iter iterations' launches.
void mixture_em(const MixtureEmArgs& e, Launch launch) {
  math::visit_dtype(e.dtype, [&](auto zero) {
    using T = decltype(zero);
    const int64_t kd = e.k * e.d;
    EmState<T> state{e,
                     allocate<T>(launch, e.sets * kd),
                     allocate<double>(launch, e.sets * e.k),
                     allocate<double>(launch, e.sets * kd),
                     allocate<double>(launch, e.sets * e.n),
                     allocate<double>(launch, e.sets),
                     allocate<double>(launch, e.sets * e.k),
                     allocate<double>(launch, e.sets * kd),
                     allocate<double>(launch, e.sets * kd),
                     allocate<double>(launch, e.sets),
                     allocate<bool>(launch, e.sets)};
    for_each_row_group(e.sets, 1, StartSet<T>{state}, launch);
    for (int64_t iteration = 1; iteration <= e.max_iter; ++iteration) {
      for_each_row_group(e.sets * e.n, 1, PointLogLikelihoods<T>{state}, launch);
      sum_rows<1>(e.sets, e.n, StoredPointLogLikelihood<T>{state}, StoreLogLikelihood<T>{state}, launch);
      for (int64_t first = 0; first == 0 || first < e.d; first += kCoordinateTile) {
        sum_rows<kComponentSums>(e.sets * e.k, e.n, ComponentStatisticsTerms<T>{state, first},
                                 StoreComponentStatistics<T>{state, first}, launch);
      }
      for_each_row_group(e.sets, 1, UpdateSet<T>{state, iteration}, launch);
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
    double* lse = parameters && a.sets * a.n > 0 ? allocate<double>(launch, a.sets * a.n) : nullptr;
    if (lse || out.x) for_each_row_group(a.sets * a.n, 1, PointBackward<T>{a, g, static_cast<T*>(out.x), lse}, launch);
    if (!parameters) return;
    for (int64_t first = 0; first == 0 || first < a.d; first += kCoordinateTile) {
      sum_rows<kComponentSums>(a.sets * a.k, a.n, ComponentTerms<T>{a, g, lse, first},
                               StoreComponentGradients<T>{a, g, out, first}, launch);
    }
  });
}

}  // namespace fusedgan::cuda

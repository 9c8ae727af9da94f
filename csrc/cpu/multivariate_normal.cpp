// Multivariate normals: data sets in parallel, each by the per-point functions of
// csrc/math/multivariate_normal.h, taking as many points at once as a vector has lanes (sets.h).
// The backward sums z and z z^T over a set's points and turns the sums into the parameters'
// gradients once per set; where asked, it also sums the log-likelihood (the forward and the
// gradients in one pass).
#include <type_traits>
#include <vector>

#include "../math/multivariate_normal.h"
#include "kernels.h"
#include "sets.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {

// One set's parameters and its points, a vector of them at a time, and a point's z per lane;
// made once per task of sets.
template <class T>
class SetLanes : public PointLanes<T> {
 public:
  explicit SetLanes(const MultivariateNormalArgs& a)
      : PointLanes<T>(a.d), a_(a), parameters_(std::is_same_v<Scalar<T>, double> ? 0 : a.d * (a.d + 2)), z_(a.d) {}

  // Set `set`, with its parameters in the lanes' scalar type (float copies for float lanes;
  // float64's are the caller's).
  math::MultivariateNormalSet<T, Scalar<T>> set(int64_t set) {
    const math::MultivariateNormalSet<T> given = math::multivariate_normal_set<T>(a_, set);
    if constexpr (std::is_same_v<Scalar<T>, double>) {
      return given;
    } else {
      const int64_t d = a_.d;
      Scalar<T>* loc = parameters_.data();
      Scalar<T>* inv_diagonal = loc + d;
      Scalar<T>* scale_tril = inv_diagonal + d;
      for (int64_t j = 0; j < d; ++j) {
        loc[j] = Scalar<T>(given.loc[j]);
        inv_diagonal[j] = Scalar<T>(given.inv_diagonal[j]);
      }
      for (int64_t j = 0; j < d * d; ++j) scale_tril[j] = Scalar<T>(given.scale_tril[j]);
      return {given.x, loc, scale_tril, inv_diagonal, a_.n, d};
    }
  }

  // The points loaded last, as a Point of the math functions.
  auto point() const {
    return [coords = this->coords()](int64_t c) { return coords[c]; };
  }
  Vec<T>* z() { return z_.data(); }

 private:
  MultivariateNormalArgs a_;
  std::vector<Scalar<T>> parameters_;  // loc (D), 1/L_jj (D), L (D, D)
  std::vector<Vec<T>> z_;
};

// A set's log-likelihood from its sum of -|z|^2 / 2, the normalizer added once per set, in double.
template <class T>
void store_log_likelihood(const MultivariateNormalArgs& a, T* out, int64_t set, double squares) {
  math::narrow_into(out + set, Scalar<T>(squares + double(a.n) * a.log_normalizer[set]));
}

template <class T>
class ForwardWorker {
 public:
  ForwardWorker(const MultivariateNormalArgs& a, T* out) : a_(a), lanes_(a), out_(out) {}

  void operator()(int64_t index) {
    using L = PointVectors<T>;
    const auto set = lanes_.set(index);
    typename L::Sum total;
    for (int64_t first = 0; first < set.n; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, set.n - first));
      lanes_.load_points(set.x, first, count);
      total.add(set.template whiten<Vec<T>>(lanes_.point(), lanes_.z()), count);
    }
    store_log_likelihood(a_, out_, index, total.total());
  }

 private:
  MultivariateNormalArgs a_;
  SetLanes<T> lanes_;
  T* out_;
};

// Per set: sum_i z_i and the lower triangle of sum_i z_i z_i^T, added lane-wise in the lanes'
// type and moved into double every kFlushEvery vectors of points, so that long sets keep
// double precision; d/dx per point from the same z.
template <class T>
class BackwardWorker {
 public:
  BackwardWorker(const MultivariateNormalArgs& a, const T* grad, const MultivariateNormalGrads& out)
      : a_(a), grad_(grad), out_(out), lanes_(a), sums_(a.d + a.d * (a.d + 1) / 2), totals_(sums_.size()) {}

  void operator()(int64_t index) {
    using L = PointVectors<T>;
    constexpr int64_t kFlushEvery = 16;
    const int64_t d = a_.d;
    const auto set = lanes_.set(index);
    const double g = double(math::widen(grad_[index]));
    std::fill(sums_.begin(), sums_.end(), Vec<T>(0.0f));
    std::fill(totals_.begin(), totals_.end(), typename L::Wide{});
    Vec<T>* z = lanes_.z();
    Vec<T>* z_sums = sums_.data();
    Vec<T>* outer_sums = z_sums + d;  // row by row: (0, 0), (1, 0), (1, 1), (2, 0), ...
    T* grad_x = out_.x ? static_cast<T*>(out_.x) + index * set.n * d : nullptr;
    typename L::Sum log_likelihood;
    for (int64_t first = 0, vectors = 0; first < set.n; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, set.n - first));
      lanes_.load_points(set.x, first, count);
      log_likelihood.add(set.template whiten<Vec<T>>(lanes_.point(), z), count);
      if (count < L::kWidth) {  // z is 0 in the lanes past the set's last point, which repeat it
        Scalar<T> live[L::kWidth];
        for (int lane = 0; lane < L::kWidth; ++lane) live[lane] = Scalar<T>(lane < count ? 1 : 0);
        const Vec<T> mask = ComputeLanes<T>::load(live, L::kWidth);
        for (int64_t j = 0; j < d; ++j) z[j] = z[j] * mask;
      }
      for (int64_t j = 0, at = 0; j < d; ++j) {
        const Vec<T> z_j = z[j];
        if (out_.loc) z_sums[j] = z_sums[j] + z_j;
        for (int64_t k = 0; out_.scale_tril && k <= j; ++k, ++at) outer_sums[at] = outer_sums[at] + z_j * z[k];
      }
      if (grad_x) store_grad_x(set, z, g, grad_x + first * d, count);
      if (++vectors % kFlushEvery == 0 || first + L::kWidth >= set.n) flush();
    }
    double* grad_loc = out_.loc ? out_.loc + index * d : nullptr;
    double* grad_scale_tril = out_.scale_tril ? out_.scale_tril + index * d * d : nullptr;
    for (int64_t j = 0, at = 0; j < d; ++j) {
      if (grad_loc) grad_loc[j] = L::sum_lanes(totals_[j]);
      for (int64_t k = 0; k <= j; ++k, ++at) {
        if (grad_scale_tril) grad_scale_tril[j * d + k] = L::sum_lanes(totals_[d + at]);
      }
    }
    math::finish_parameter_gradients(math::multivariate_normal_set<T>(a_, index), g, grad_loc, grad_scale_tril);
    if (out_.log_likelihood) store_log_likelihood(a_, static_cast<T*>(out_.log_likelihood), index, log_likelihood.total());
  }

 private:
  // d/dx = -g L^-T z of the `count` points at hand (z is overwritten).
  template <class Set>
  static void store_grad_x(const Set& set, Vec<T>* z, double g, T* grad_x, int count) {
    using L = PointVectors<T>;
    set.solve_transposed(z);
    for (int64_t c = 0; c < set.d; ++c) {
      Scalar<T> lanes[L::kWidth];
      ComputeLanes<T>::store(lanes, Vec<T>(Scalar<T>(-g)) * z[c], L::kWidth);
      for (int lane = 0; lane < count; ++lane) math::narrow_into(grad_x + lane * set.d + c, lanes[lane]);
    }
  }

  void flush() {
    for (size_t j = 0; j < sums_.size(); ++j) {
      PointVectors<T>::add_wide(totals_[j], sums_[j]);
      sums_[j] = Vec<T>(0.0f);
    }
  }

  MultivariateNormalArgs a_;
  const T* grad_;
  MultivariateNormalGrads out_;
  SetLanes<T> lanes_;
  std::vector<Vec<T>> sums_;  // sum z (D), then the lower triangle of sum z z^T row by row
  std::vector<typename PointVectors<T>::Wide> totals_;
};

}  // namespace

void multivariate_normal_log_likelihood(const MultivariateNormalArgs& a, void* out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_set(a.sets, a.n * a.d * a.d, [&] { return ForwardWorker<T>(a, static_cast<T*>(out)); });
  });
}

// The gradients of each set's log-likelihood times grad[set], written into (not added to) the
// outputs that are not null: x's in the data's type, the parameters' in double.
void multivariate_normal_log_likelihood_backward(const MultivariateNormalArgs& a, const void* grad,
                                                 const MultivariateNormalGrads& out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_set(a.sets, a.n * a.d * a.d, [&] { return BackwardWorker<T>(a, static_cast<const T*>(grad), out); });
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

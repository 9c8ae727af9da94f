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
      : PointLanes<T>(a.d), a_(a), parameters_(std::is_same_v<Scalar<T>, double> ? 0 : a.d * (a.d + 2)) {}

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

 private:
  MultivariateNormalArgs a_;
  std::vector<Scalar<T>> parameters_;  // loc (D), 1/L_jj (D), L (D, D)
};

// Vectors of points are taken kBlock at a time (sets.h), a set's last few one at a time.
inline constexpr int kBlock = 4;

template <class T, int kCount>
using Block = VectorBlock<Vec<T>, kCount>;

// The coordinates and z of a block of points, and of a single vector of them (D each).
template <class T>
class BlockScratch {
 public:
  explicit BlockScratch(int64_t d) : coords_(d), z_(d), single_coords_(d), single_z_(d) {}

  template <int kCount>
  Block<T, kCount>* coords() {
    if constexpr (kCount == 1) return single_coords_.data(); else return coords_.data();
  }
  template <int kCount>
  Block<T, kCount>* z() {
    if constexpr (kCount == 1) return single_z_.data(); else return z_.data();
  }
  // The block loaded last, as a Point of the math functions.
  template <int kCount>
  auto point() {
    return [coords = coords<kCount>()](int64_t c) { return coords[c]; };
  }

 private:
  std::vector<Block<T, kBlock>> coords_, z_;
  std::vector<Block<T, 1>> single_coords_, single_z_;
};

// A set's log-likelihood from its sum of -|z|^2 / 2, the normalizer added once per set, in double.
template <class T>
void store_log_likelihood(const MultivariateNormalArgs& a, T* out, int64_t set, double squares) {
  math::narrow_into(out + set, Scalar<T>(squares + double(a.n) * a.log_normalizer[set]));
}

template <class T>
class ForwardWorker {
 public:
  ForwardWorker(const MultivariateNormalArgs& a, T* out) : a_(a), lanes_(a), scratch_(a.d), out_(out) {}

  void operator()(int64_t index) {
    using L = PointVectors<T>;
    const auto set = lanes_.set(index);
    typename L::Sum total;
    for_each_block<kBlock, T>(set.n, [&]<int kCount>(int64_t first, int count) {
      lanes_.template load_block<kCount>(set.x, first, count, scratch_.template coords<kCount>());
      const auto values = set.template whiten<Block<T, kCount>>(scratch_.template point<kCount>(), scratch_.template z<kCount>());
      for (int b = 0; b < kCount; ++b) total.add(values.v[b], b + 1 < kCount ? L::kWidth : count);
    });
    store_log_likelihood(a_, out_, index, total.total());
  }

 private:
  MultivariateNormalArgs a_;
  SetLanes<T> lanes_;
  BlockScratch<T> scratch_;
  T* out_;
};

// Per set: sum_i z_i and the lower triangle of sum_i z_i z_i^T, added lane-wise in the lanes'
// type and moved into double every kFlushEvery vectors of points, so that long sets keep
// double precision; d/dx per point from the same z. A block's z enter the sums together, each
// sum loaded and stored once for the block.
template <class T>
class BackwardWorker {
 public:
  static constexpr int64_t kFlushEvery = 16;  // vectors, a multiple of kBlock

  BackwardWorker(const MultivariateNormalArgs& a, const T* grad, const MultivariateNormalGrads& out)
      : a_(a), grad_(grad), out_(out), lanes_(a), scratch_(a.d), sums_(a.d + a.d * (a.d + 1) / 2),
        totals_(sums_.size()) {}

  void operator()(int64_t index) {
    using L = PointVectors<T>;
    const int64_t d = a_.d;
    const auto set = lanes_.set(index);
    const double g = double(math::widen(grad_[index]));
    std::fill(sums_.begin(), sums_.end(), Vec<T>(0.0f));
    std::fill(totals_.begin(), totals_.end(), typename L::Wide{});
    T* grad_x = out_.x ? static_cast<T*>(out_.x) + index * set.n * d : nullptr;
    typename L::Sum log_likelihood;
    int64_t vectors = 0;
    for_each_block<kBlock, T>(set.n, [&]<int kCount>(int64_t first, int count) {
      Block<T, kCount>* z = scratch_.template z<kCount>();
      lanes_.template load_block<kCount>(set.x, first, count, scratch_.template coords<kCount>());
      const auto values = set.template whiten<Block<T, kCount>>(scratch_.template point<kCount>(), z);
      for (int b = 0; b < kCount; ++b) log_likelihood.add(values.v[b], b + 1 < kCount ? L::kWidth : count);
      if (count < L::kWidth) {  // z is 0 in the lanes past the set's last point, which repeat it
        const Vec<T> mask = first_lanes<T>(count, 1.0);
        for (int64_t j = 0; j < d; ++j) z[j].v[kCount - 1] = z[j].v[kCount - 1] * mask;
      }
      add_to_sums(z);
      if (grad_x) store_grad_x(set, z, g, grad_x + first * d, count);
      vectors += kCount;
      if (vectors % kFlushEvery == 0 || first + kCount * L::kWidth >= set.n) flush();
    });
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
  // Adds a block's z to the sums wanted.
  template <int kCount>
  void add_to_sums(const Block<T, kCount>* z) {
    const int64_t d = a_.d;
    Vec<T>* z_sums = sums_.data();
    Vec<T>* outer_sums = z_sums + d;  // row by row: (0, 0), (1, 0), (1, 1), (2, 0), ...
    for (int64_t j = 0, at = 0; j < d; ++j) {
      if (out_.loc) {
        Vec<T> sum = z_sums[j];
        for (int b = 0; b < kCount; ++b) sum = sum + z[j].v[b];
        z_sums[j] = sum;
      }
      for (int64_t k = 0; out_.scale_tril && k <= j; ++k, ++at) {
        Vec<T> sum = outer_sums[at];
        for (int b = 0; b < kCount; ++b) sum = sum + z[j].v[b] * z[k].v[b];
        outer_sums[at] = sum;
      }
    }
  }

  // d/dx = -g L^-T z of a block's points from grad_x on, its last vector holding `count` (z is
  // overwritten).
  template <class Set, int kCount>
  static void store_grad_x(const Set& set, Block<T, kCount>* z, double g, T* grad_x, int count) {
    using L = PointVectors<T>;
    set.solve_transposed(z);
    for (int b = 0; b < kCount; ++b) {
      for (int64_t c = 0; c < set.d; ++c) {
        Scalar<T> lanes[L::kWidth];
        ComputeLanes<T>::store(lanes, Vec<T>(Scalar<T>(-g)) * z[c].v[b], L::kWidth);
        for (int lane = 0; lane < (b + 1 < kCount ? L::kWidth : count); ++lane) {
          math::narrow_into(grad_x + (b * L::kWidth + lane) * set.d + c, lanes[lane]);
        }
      }
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
  BlockScratch<T> scratch_;
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

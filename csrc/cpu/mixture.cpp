// Normal mixtures: data sets in parallel, each by the per-point functions of
// csrc/math/mixture.h, taking as many points at once as a vector has lanes (sets.h).
#include <type_traits>
#include <vector>

#include "../math/mixture.h"
#include "kernels.h"
#include "sets.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {

// One set's terms and its points, a vector of them at a time; made once per task of sets.
// The backward gives the lanes past a set's last point g = 0.
template <class T>
class SetLanes : public PointLanes<T> {
 public:
  explicit SetLanes(const MixtureArgs& a)
      : PointLanes<T>(a.d), a_(a), terms_(std::is_same_v<Scalar<T>, double> ? 0 : a.k + 2 * a.k * a.d) {}

  // Set `set`, with loc and the precomputed terms in the lanes' scalar type (float copies
  // for float lanes, so that no float16 is widened per use; float64's are the caller's).
  math::MixtureSet<T, Scalar<T>, Scalar<T>> set(int64_t set) {
    const math::MixtureSet<T> given = math::mixture_set<T>(a_, set);
    if constexpr (std::is_same_v<Scalar<T>, double>) {
      return given;
    } else {
      Scalar<T>* log_weight = terms_.data();
      Scalar<T>* inv_scale = log_weight + a_.k;
      Scalar<T>* loc = inv_scale + a_.k * a_.d;
      for (int64_t j = 0; j < a_.k; ++j) log_weight[j] = Scalar<T>(given.log_weight[j]);
      for (int64_t j = 0; j < a_.k * a_.d; ++j) {
        inv_scale[j] = Scalar<T>(given.inv_scale[j]);
        loc[j] = math::widen(given.loc[j]);
      }
      return {given.x, loc, log_weight, inv_scale, a_.n, a_.k, a_.d};
    }
  }

 private:
  MixtureArgs a_;
  std::vector<Scalar<T>> terms_;
};

template <class T>
class ForwardWorker {
 public:
  ForwardWorker(const MixtureArgs& a, T* out) : lanes_(a), out_(out) {}

  void operator()(int64_t index) {
    using L = Lanes<T>;
    const auto set = lanes_.set(index);
    const Vec<T>* coords = lanes_.coords();
    const auto x = [coords](int64_t c) { return coords[c]; };
    Vec<T> log_joints[math::kMixtureBlock];
    typename L::Sum total;
    for (int64_t first = 0; first < set.n; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, set.n - first));
      lanes_.load_points(set.x, first, count);
      total.add(set.template point_log_likelihood<Vec<T>>(x, log_joints), count);
    }
    math::narrow_into(out_ + index, Scalar<T>(total.total()));
  }

 private:
  SetLanes<T> lanes_;
  T* out_;
};

// Per set: the gradient sums are added lane-wise in the lanes' type and moved into double
// every kFlushEvery vectors of points, so that long sets keep double precision.
template <class T>
class BackwardWorker {
 public:
  BackwardWorker(const MixtureArgs& a, const T* grad, const MixtureGrads& out)
      : a_(a), grad_(grad), out_(out), lanes_(a), sums_(a.k * (1 + 2 * a.d)), totals_(sums_.size()), pull_x_(a.d) {}

  void operator()(int64_t index) {
    using L = Lanes<T>;
    constexpr int64_t kFlushEvery = 16;
    const int64_t k = a_.k, d = a_.d;
    const auto set = lanes_.set(index);
    const double g = double(math::widen(grad_[index]));
    std::fill(sums_.begin(), sums_.end(), Vec<T>(0.0f));
    std::fill(totals_.begin(), totals_.end(), typename L::Wide{});
    Vec<T>* logits_sums = out_.logits ? sums_.data() : nullptr;
    Vec<T>* loc_sums = out_.loc ? sums_.data() + k : nullptr;
    Vec<T>* scale_sums = out_.scale ? sums_.data() + k + k * d : nullptr;
    T* grad_x = out_.x ? static_cast<T*>(out_.x) + index * set.n * d : nullptr;
    for (int64_t j = 0; grad_x && k == 0 && j < set.n * d; ++j) math::narrow_into(grad_x + j, Scalar<T>(0));

    const Vec<T>* coords = lanes_.coords();
    const auto x = [coords](int64_t c) { return coords[c]; };
    const auto add_to_x = [this](int64_t c, Vec<T> pull, bool first_block) {
      pull_x_[c] = first_block ? pull : pull_x_[c] + pull;
    };
    for (int64_t first = 0, vectors = 0; first < set.n; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, set.n - first));
      lanes_.load_points(set.x, first, count);
      Scalar<T> g_lanes[L::kWidth];
      for (int lane = 0; lane < L::kWidth; ++lane) g_lanes[lane] = Scalar<T>(lane < count ? g : 0.0);
      set.template add_point_gradients<Vec<T>>(x, ComputeLanes<T>::load(g_lanes, L::kWidth), logits_sums, loc_sums,
                                               scale_sums, add_to_x);
      for (int64_t c = 0; c < d && grad_x && k > 0; ++c) {
        Scalar<T> lanes[L::kWidth];
        ComputeLanes<T>::store(lanes, -pull_x_[c], L::kWidth);
        for (int lane = 0; lane < count; ++lane) math::narrow_into(grad_x + (first + lane) * d + c, lanes[lane]);
      }
      if (++vectors % kFlushEvery == 0 || first + L::kWidth >= set.n) flush();
    }
    const auto write = [&](double* out, int64_t offset, int64_t size) {
      for (int64_t j = 0; out && j < size; ++j) out[index * size + j] = L::sum_lanes(totals_[offset + j]);
    };
    write(out_.logits, 0, k);
    write(out_.loc, k, k * d);
    write(out_.scale, k + k * d, k * d);
    if (out_.logits) math::subtract_expected_counts(a_, index, g, out_.logits + index * k);
  }

 private:
  void flush() {
    for (size_t j = 0; j < sums_.size(); ++j) {
      Lanes<T>::add_wide(totals_[j], sums_[j]);
      sums_[j] = Vec<T>(0.0f);
    }
  }

  MixtureArgs a_;
  const T* grad_;
  MixtureGrads out_;
  SetLanes<T> lanes_;
  std::vector<Vec<T>> sums_;  // logits (K), loc (K, D), scale (K, D)
  std::vector<typename Lanes<T>::Wide> totals_;
  std::vector<Vec<T>> pull_x_;  // d/dx of the points at hand, per coordinate
};

}  // namespace

void mixture_log_likelihood(const MixtureArgs& a, void* out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_set(a.sets, a.n * a.k * a.d, [&] { return ForwardWorker<T>(a, static_cast<T*>(out)); });
  });
}

void mixture_log_likelihood_backward(const MixtureArgs& a, const void* grad, const MixtureGrads& out) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_set(a.sets, a.n * a.k * a.d, [&] { return BackwardWorker<T>(a, static_cast<const T*>(grad), out); });
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

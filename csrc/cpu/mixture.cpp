// Normal mixtures: data sets in parallel (EM's E step: pieces of their points), each by the
// per-point functions of csrc/math/mixture.h, taking as many points at once as a vector has
// lanes (sets.h).
#include <algorithm>
#include <cmath>
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

// The sum of a set's points' log-likelihoods m + log(s), a vector of points at a time: the m's
// added lane-wise, the s's (each in [1, K]) multiplied lane-wise and their product's log added
// every span vectors, which spares each point a log. The span keeps K^span inside the type's
// range and the product's rounding below the sum's own: at most 16 in float, 64 in double.
template <class T>
class LogLikelihoodSum {
 public:
  explicit LogLikelihoodSum(int64_t k) {
    constexpr bool kDouble = std::is_same_v<Scalar<T>, double>;
    const double span = (kDouble ? 700.0 : 85.0) / std::log(double(std::max<int64_t>(k, 2)));
    span_ = int(std::clamp(span, 1.0, kDouble ? 64.0 : 16.0));
  }

  // Adds the points of the lanes where in_set is 1 (0 in a set's padding lanes).
  void add(const math::LogSumExp<Vec<T>>& points, Vec<T> in_set, int count) {
    maxima_.add(points.max, count);
    product_ = product_ * (points.sum * in_set + (Vec<T>(1.0f) - in_set));
    if (++vectors_ == span_) flush();
  }
  double total() {
    flush();
    return maxima_.total() + logs_.total();
  }

 private:
  void flush() {
    if (vectors_ == 0) return;
    logs_.add(log(product_), PointVectors<T>::kWidth);
    product_ = Vec<T>(1.0f);
    vectors_ = 0;
  }

  typename PointVectors<T>::Sum maxima_, logs_;
  Vec<T> product_ = Vec<T>(1.0f);
  int span_, vectors_ = 0;
};

template <class T>
class ForwardWorker {
 public:
  ForwardWorker(const MixtureArgs& a, T* out) : lanes_(a), out_(out) {}

  void operator()(int64_t index) {
    using L = PointVectors<T>;
    const auto set = lanes_.set(index);
    const Vec<T>* coords = lanes_.coords();
    const auto x = [coords](int64_t c) { return coords[c]; };
    LogLikelihoodSum<T> total(set.k);
    for (int64_t first = 0; first < set.n; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, set.n - first));
      lanes_.load_points(set.x, first, count);
      total.add(set.template point_log_sum_exp<Vec<T>>(x), first_lanes<T>(count, 1.0), count);
    }
    math::narrow_into(out_ + index, Scalar<T>(total.total()));
  }

 private:
  SetLanes<T> lanes_;
  T* out_;
};

// Indexable sums over a set's points, added lane-wise in the lanes' type and moved into
// double every kFlushEvery vectors of points, so that long sets keep double precision.
template <class T>
class LaneSums {
 public:
  explicit LaneSums(int64_t size) : sums_(size), totals_(size) {}

  void clear() {
    std::fill(sums_.begin(), sums_.end(), Vec<T>(0.0f));
    std::fill(totals_.begin(), totals_.end(), typename PointVectors<T>::Wide{});
    vectors_ = 0;
  }
  Vec<T>* data() { return sums_.data(); }
  // Called after each vector of points, `last` after a set's last.
  void next_vector(bool last) {
    constexpr int64_t kFlushEvery = 16;
    if (++vectors_ % kFlushEvery == 0 || last) {
      for (size_t j = 0; j < sums_.size(); ++j) {
        PointVectors<T>::add_wide(totals_[j], sums_[j]);
        sums_[j] = Vec<T>(0.0f);
      }
    }
  }
  double total(int64_t j) const { return PointVectors<T>::sum_lanes(totals_[j]); }

 private:
  std::vector<Vec<T>> sums_;
  std::vector<typename PointVectors<T>::Wide> totals_;
  int64_t vectors_ = 0;
};

template <class T>
class BackwardWorker {
 public:
  BackwardWorker(const MixtureArgs& a, const T* grad, const MixtureGrads& out)
      : a_(a), grad_(grad), out_(out), lanes_(a), sums_(a.k * (1 + 2 * a.d)), pull_x_(a.d) {}

  void operator()(int64_t index) {
    using L = PointVectors<T>;
    const int64_t k = a_.k, d = a_.d;
    const auto set = lanes_.set(index);
    const double g = double(math::widen(grad_[index]));
    sums_.clear();
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
    for (int64_t first = 0; first < set.n; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, set.n - first));
      lanes_.load_points(set.x, first, count);
      set.template add_point_gradients<Vec<T>>(x, first_lanes<T>(count, g), logits_sums, loc_sums, scale_sums,
                                               add_to_x);
      for (int64_t c = 0; c < d && grad_x && k > 0; ++c) {
        Scalar<T> lanes[L::kWidth];
        ComputeLanes<T>::store(lanes, -pull_x_[c], L::kWidth);
        for (int lane = 0; lane < count; ++lane) math::narrow_into(grad_x + (first + lane) * d + c, lanes[lane]);
      }
      sums_.next_vector(first + L::kWidth >= set.n);
    }
    const auto write = [&](double* out, int64_t offset, int64_t size) {
      for (int64_t j = 0; out && j < size; ++j) out[index * size + j] = sums_.total(offset + j);
    };
    write(out_.logits, 0, k);
    write(out_.loc, k, k * d);
    write(out_.scale, k + k * d, k * d);
    if (out_.logits) math::subtract_expected_counts(a_, index, g, out_.logits + index * k);
  }

 private:
  MixtureArgs a_;
  const T* grad_;
  MixtureGrads out_;
  SetLanes<T> lanes_;
  LaneSums<T> sums_;  // logits (K), loc (K, D), scale (K, D)
  std::vector<Vec<T>> pull_x_;  // d/dx of the points at hand, per coordinate
};

// Every set's points as vectors of points, coordinate by coordinate (PointLanes' layout), laid
// out once for all of EM's iterations: gathering them from x's rows costs a third of an E step.
template <class T>
class SetVectors {
 public:
  explicit SetVectors(const MixtureArgs& a)
      : d_(a.d), per_set_((a.n + PointVectors<T>::kWidth - 1) / PointVectors<T>::kWidth), vectors_(a.sets * per_set_ * a.d) {
    for_each_set(a.sets, a.n * a.d, [&] {
      return [this, a, lanes = PointLanes<T>(a.d)](int64_t set) mutable {
        const T* x = static_cast<const T*>(a.x) + set * a.n * a.d;
        for (int64_t first = 0; first < a.n; first += PointVectors<T>::kWidth) {
          lanes.load_points(x, first, int(std::min<int64_t>(PointVectors<T>::kWidth, a.n - first)));
          std::copy(lanes.coords(), lanes.coords() + d_, vectors_.data() + (set * per_set_ + first / PointVectors<T>::kWidth) * d_);
        }
      };
    });
  }

  // The coordinates of the vector of points from point `first` (a multiple of the width) of a set.
  const Vec<T>* coords(int64_t set, int64_t first) const {
    return vectors_.data() + (set * per_set_ + first / PointVectors<T>::kWidth) * d_;
  }

 private:
  int64_t d_, per_set_;
  std::vector<Vec<T>> vectors_;
};

// EM's E step over the points [begin, end) of a set (begin a multiple of the width): its
// log-likelihood, then its counts (K), deviations (K, D) and squares (K, D), into `out`.
template <class T>
class StatisticsWorker {
 public:
  StatisticsWorker(const MixtureArgs& a, const SetVectors<T>& points)
      : a_(a), points_(points), lanes_(a), sums_(a.k * (1 + 2 * a.d)) {}

  void operator()(int64_t index, int64_t begin, int64_t end, double* out) {
    using L = PointVectors<T>;
    const int64_t k = a_.k, d = a_.d;
    const auto set = lanes_.set(index);
    sums_.clear();
    Vec<T>* counts = sums_.data();
    LogLikelihoodSum<T> log_likelihood(k);
    for (int64_t first = begin; first < end; first += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, end - first));
      const Vec<T>* coords = points_.coords(index, first);
      const auto x = [coords](int64_t c) { return coords[c]; };
      const Vec<T> in_set = first_lanes<T>(count, 1.0);
      log_likelihood.add(set.template add_point_statistics<Vec<T>>(x, in_set, counts, counts + k, counts + k + k * d),
                         in_set, count);
      sums_.next_vector(first + L::kWidth >= end);
    }
    out[0] = log_likelihood.total();
    for (int64_t j = 0; j < k * (1 + 2 * d); ++j) out[1 + j] = sums_.total(j);
  }

 private:
  MixtureArgs a_;
  const SetVectors<T>& points_;
  SetLanes<T> lanes_;  // (its parameter copies)
  LaneSums<T> sums_;  // counts (K), deviations (K, D), squares (K, D)
};

// A set's points are cut into pieces of this many, summed in parallel and added in piece
// order: one large set uses every thread, and the sums do not depend on their number.
inline constexpr int64_t kPointsPerPiece = 2048;

// EM's E step of the sets `running` (of a): per set its log-likelihood, then its counts (K),
// deviations (K, D) and squares (K, D), in double, into `sums` (width() per set).
template <class T>
class EStep {
 public:
  explicit EStep(const MixtureArgs& a)
      : a_(a), points_(a), pieces_per_set_(std::max<int64_t>(1, (a.n + kPointsPerPiece - 1) / kPointsPerPiece)) {}

  int64_t width() const { return 1 + a_.k + 2 * a_.k * a_.d; }

  void operator()(const std::vector<int64_t>& running, std::vector<double>& sums) {
    const int64_t width = this->width(), pieces = int64_t(running.size()) * pieces_per_set_;
    piece_sums_.resize(pieces * width);
    const int64_t work = std::max<int64_t>(1, std::min(a_.n, kPointsPerPiece) * a_.k * a_.d);
    const int64_t pieces_per_task = std::max<int64_t>(1, kChunk / work);
    for_each_index((pieces + pieces_per_task - 1) / pieces_per_task, pieces * work > kChunk, [&](int64_t task) {
      StatisticsWorker<T> worker(a_, points_);
      for (int64_t piece = task * pieces_per_task; piece < std::min(pieces, (task + 1) * pieces_per_task); ++piece) {
        const int64_t set = running[piece / pieces_per_set_], begin = (piece % pieces_per_set_) * kPointsPerPiece;
        worker(set, begin, std::min(a_.n, begin + kPointsPerPiece), piece_sums_.data() + piece * width);
      }
    });
    sums.assign(running.size() * width, 0.0);
    for (int64_t piece = 0; piece < pieces; ++piece) {  // in piece order
      for (int64_t j = 0; j < width; ++j) sums[piece / pieces_per_set_ * width + j] += piece_sums_[piece * width + j];
    }
  }

 private:
  MixtureArgs a_;
  SetVectors<T> points_;
  int64_t pieces_per_set_;
  std::vector<double> piece_sums_;
};

}  // namespace

// The E step of the running sets in parallel, then each one's M step and its stopping test;
// a set that stops leaves the later iterations.
void mixture_em(const MixtureEmArgs& e) {
  math::visit_dtype(e.dtype, [&](auto zero) {
    using T = decltype(zero);
    const int64_t k = e.k, d = e.d, kd = k * d;
    std::vector<T> loc_t(e.sets * kd);
    std::vector<double> log_weight(e.sets * k), inv_scale(e.sets * kd), bound(e.sets, -HUGE_VAL), sums;
    const auto prepare = [&](int64_t set) {
      math::em_step_terms(k, d, e.log_pi + set * k, e.loc + set * kd, e.scale + set * kd, loc_t.data() + set * kd,
                          log_weight.data() + set * k, inv_scale.data() + set * kd);
    };
    std::vector<int64_t> running, still;
    for (int64_t set = 0; set < e.sets; ++set) {
      prepare(set);
      running.push_back(set);
    }
    EStep<T> e_step(MixtureArgs{e.dtype, e.sets, e.n, k, d, e.x, loc_t.data(), e.log_pi, log_weight.data(),
                                inv_scale.data()});
    const int64_t width = e_step.width();
    for (int64_t iteration = 1; !running.empty(); ++iteration) {
      e_step(running, sums);
      still.clear();
      for (size_t i = 0; i < running.size(); ++i) {
        const int64_t set = running[i];
        const double* counts = sums.data() + i * width + 1;
        math::em_maximisation(k, d, counts, counts + k, counts + k + kd, loc_t.data() + set * kd, e.reg_covar,
                              e.log_pi + set * k, e.loc + set * kd, e.scale + set * kd);
        const double previous = bound[set];
        bound[set] = sums[i * width] / double(e.n);
        if (math::em_stops(previous, bound[set], e.tol, iteration, e.max_iter, e.converged + set)) {
          e.lower_bound[set] = bound[set];
          e.iterations[set] = iteration;
        } else {
          prepare(set);
          still.push_back(set);
        }
      }
      running.swap(still);
    }
  });
}

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

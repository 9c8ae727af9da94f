// What the kernels over data sets of D-dimensional points share (the normal mixture, the
// multivariate normal): sets in parallel, each set's points as many at once as a vector has
// lanes (float32, float16 and bfloat16 in float vectors, float64 in double vectors).
// A set is taken by one task from its first point to its last, so its sums have the same bits
// for any thread count.
#pragma once

#include <algorithm>
#include <type_traits>
#include <vector>

#include "loops.h"
#include "simd_double.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

// Float64 points in double vectors (the elementwise loops' Lanes<double> is one at a time).
struct DoubleLanes {
  using Vec = VecD;
  using Sum = SumD;
  static constexpr int kWidth = kDoubleLanes;

  // Lanes past `count` load as 0 and are not stored.
  FUSEDGAN_ALWAYS_INLINE static Vec load(const double* p, int count) {
    if (count == kWidth) return VecD::load(p);
    double lanes[kWidth] = {};
    for (int i = 0; i < count; ++i) lanes[i] = p[i];
    return VecD::load(lanes);
  }
  FUSEDGAN_ALWAYS_INLINE static void store(double* p, Vec v, int count) {
    double lanes[kWidth];
    v.store(lanes);
    for (int i = 0; i < count; ++i) p[i] = lanes[i];
  }
  using Wide = F64xR;  // per-lane sums (the float lanes' are wider than their vectors)
  FUSEDGAN_ALWAYS_INLINE static void add_wide(Wide& total, Vec v) { total += v.v; }
  static double sum_lanes(const Wide& total) { return reduce_lanes(total, Add{}); }
};

// The vectors a set's points are computed in.
template <class T>
struct PointVectorsOf {
  using type = Lanes<T>;
};
template <>
struct PointVectorsOf<double> {
  using type = DoubleLanes;
};
template <class T>
using PointVectors = typename PointVectorsOf<T>::type;
template <class T>
using ComputeLanes = PointVectors<math::compute_t<T>>;  // loads from and stores to the compute type
template <class T>
using Vec = typename PointVectors<T>::Vec;
template <class T>
using Scalar = math::compute_t<T>;  // what a lane holds: float, or double

// Sets [0, sets) in parallel, in tasks of about a chunk of arithmetic (`work` per set); each
// task makes its own worker (scratch memory) with make_worker() and calls it per set.
template <class MakeWorker>
void for_each_set(int64_t sets, int64_t work, const MakeWorker& make_worker) {
  work = std::max<int64_t>(1, work);
  const int64_t sets_per_task = std::max<int64_t>(1, kChunk / work);
  for_each_index((sets + sets_per_task - 1) / sets_per_task, sets * work > kChunk, [&](int64_t task) {
    auto worker = make_worker();
    const int64_t last = std::min(sets, (task + 1) * sets_per_task);
    for (int64_t set = task * sets_per_task; set < last; ++set) worker(set);
  });
}

// `value` in the first `count` lanes (a set's points), 0 in the padding past them.
template <class T>
Vec<T> first_lanes(int count, double value) {
  if (count == PointVectors<T>::kWidth) return Vec<T>(Scalar<T>(value));
  Scalar<T> lanes[PointVectors<T>::kWidth];
  for (int lane = 0; lane < PointVectors<T>::kWidth; ++lane) lanes[lane] = Scalar<T>(lane < count ? value : 0.0);
  return ComputeLanes<T>::load(lanes, PointVectors<T>::kWidth);
}

// kCount vectors taken as one value by the math functions (csrc/math): their arithmetic
// interleaved, so that a chain of dependent multiply-adds (a triangular solve) runs for
// kCount vectors of points at once and its latency is hidden.
template <class V, int kCount>
struct VectorBlock {
  V v[kCount];

  VectorBlock() = default;
  template <class S, class = std::enable_if_t<std::is_arithmetic_v<S>>>
  VectorBlock(S scalar) {  // NOLINT: broadcasts like a scalar literal
    for (V& each : v) each = V(scalar);
  }
};

template <class V, int kCount, class Op>
FUSEDGAN_ALWAYS_INLINE VectorBlock<V, kCount> each_of(const VectorBlock<V, kCount>& a, const VectorBlock<V, kCount>& b,
                                                      Op op) {
  VectorBlock<V, kCount> result;
  for (int i = 0; i < kCount; ++i) result.v[i] = op(a.v[i], b.v[i]);
  return result;
}
template <class V, int kCount>
FUSEDGAN_ALWAYS_INLINE VectorBlock<V, kCount> operator+(const VectorBlock<V, kCount>& a, const VectorBlock<V, kCount>& b) {
  return each_of(a, b, [](V x, V y) { return x + y; });
}
template <class V, int kCount>
FUSEDGAN_ALWAYS_INLINE VectorBlock<V, kCount> operator-(const VectorBlock<V, kCount>& a, const VectorBlock<V, kCount>& b) {
  return each_of(a, b, [](V x, V y) { return x - y; });
}
template <class V, int kCount>
FUSEDGAN_ALWAYS_INLINE VectorBlock<V, kCount> operator*(const VectorBlock<V, kCount>& a, const VectorBlock<V, kCount>& b) {
  return each_of(a, b, [](V x, V y) { return x * y; });
}

// A set of n points in blocks: f.template operator()<kBlock>(first, count) while kBlock whole
// vectors of points remain, then f.template operator()<1>(first, count) for each vector left;
// `count` is the number of points in the block's last vector.
template <int kBlock, class T, class F>
void for_each_block(int64_t n, const F& f) {
  constexpr int64_t kWidth = PointVectors<T>::kWidth;
  int64_t first = 0;
  for (; first + kBlock * kWidth <= n; first += kBlock * kWidth) f.template operator()<kBlock>(first, int(kWidth));
  for (; first < n; first += kWidth) f.template operator()<1>(first, int(std::min<int64_t>(kWidth, n - first)));
}

// A vector of points of a set, coordinate by coordinate.
template <class T>
class PointLanes {
 public:
  static constexpr int kWidth = PointVectors<T>::kWidth;

  explicit PointLanes(int64_t d) : d_(d), coords_(d) {}

  // Loads points [first, first + count) of x (N, D), coordinate c of point first + lane into
  // lane of coords()[c]. Lanes past count repeat the last point: no stray values enter the
  // arithmetic (and nothing of theirs is kept).
  void load_points(const T* x, int64_t first, int count) {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      if (count == kWidth) {  // each coordinate one gather, where copying lane by lane stalls the load after it
        for (int64_t c = 0; c < d_; ++c) coords_[c] = gather(x + first * d_ + c, d_);
        return;
      }
    }
    for (int64_t c = 0; c < d_; ++c) {
      Scalar<T> lanes[kWidth];
      for (int lane = 0; lane < kWidth; ++lane) {
        lanes[lane] = math::widen(x[(first + std::min(lane, count - 1)) * d_ + c]);
      }
      coords_[c] = ComputeLanes<T>::load(lanes, kWidth);
    }
  }
  const Vec<T>* coords() const { return coords_.data(); }

  // kCount vectors of points from point `first`, the last holding `count` of them, into
  // coords (D blocks).
  template <int kCount>
  void load_block(const T* x, int64_t first, int count, VectorBlock<Vec<T>, kCount>* coords) {
    for (int b = 0; b < kCount; ++b) {
      load_points(x, first + b * kWidth, b + 1 < kCount ? kWidth : count);
      for (int64_t c = 0; c < d_; ++c) coords[c].v[b] = coords_[c];
    }
  }

 private:
  int64_t d_;
  std::vector<Vec<T>> coords_;
};

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// What the kernels over data sets of D-dimensional points share (the normal mixture, the
// multivariate normal): sets in parallel, each set's points as many at once as a vector has
// lanes (float32, float16 and bfloat16 in float vectors; float64 one point at a time in double).
// A set is taken by one task from its first point to its last, so its sums have the same bits
// for any thread count.
#pragma once

#include <algorithm>
#include <vector>

#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

template <class T>
using ComputeLanes = Lanes<math::compute_t<T>>;  // loads from and stores to the compute type
template <class T>
using Vec = typename Lanes<T>::Vec;
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

// A vector of points of a set, coordinate by coordinate.
template <class T>
class PointLanes {
 public:
  static constexpr int kWidth = Lanes<T>::kWidth;

  explicit PointLanes(int64_t d) : d_(d), coords_(d) {}

  // Loads points [first, first + count) of x (N, D), coordinate c of point first + lane into
  // lane of coords()[c]. Lanes past count repeat the last point: no stray values enter the
  // arithmetic (and nothing of theirs is kept).
  void load_points(const T* x, int64_t first, int count) {
    for (int64_t c = 0; c < d_; ++c) {
      Scalar<T> lanes[kWidth];
      for (int lane = 0; lane < kWidth; ++lane) {
        lanes[lane] = math::widen(x[(first + std::min(lane, count - 1)) * d_ + c]);
      }
      coords_[c] = ComputeLanes<T>::load(lanes, kWidth);
    }
  }
  const Vec<T>* coords() const { return coords_.data(); }

 private:
  int64_t d_;
  std::vector<Vec<T>> coords_;
};

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// The loop every CPU kernel runs: the flat range [0, n) in fixed chunks (the unit of
// parallel work and of the reduction), each chunk in runs of up to one vector that never
// cross a row of the Grid. Sums are taken per chunk in double and the chunk sums added in
// chunk order, so a reduction gives the same bits for any number of threads.
#pragma once

#include <algorithm>
#include <atomic>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../kernel_api.h"
#include "../math/storage.h"
#include "parallel.h"
#include "simd.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

inline constexpr int64_t kChunk = 16384;

// How a storage type is computed on: float-like types as 16-lane float vectors, double one
// element at a time. Lanes past `count` load as 0 and are not stored.
template <class T>
struct Lanes {
  using Vec = VecF;
  using Sum = SumF64;
  static constexpr int kWidth = VecF::kLanes;

  static Vec load(const T* p, int count) {
    if constexpr (std::is_same_v<T, float>) {
      if (count == kWidth) return VecF::load(p);
    }
    float lanes[kWidth] = {};
    for (int i = 0; i < count; ++i) lanes[i] = math::widen(p[i]);
    return VecF::load(lanes);
  }
  static void store(T* p, Vec v, int count) {
    if constexpr (std::is_same_v<T, float>) {
      if (count == kWidth) return v.store(p);
    }
    float lanes[kWidth];
    v.store(lanes);
    for (int i = 0; i < count; ++i) math::narrow_into(p + i, lanes[i]);
  }
};

template <>
struct Lanes<double> {
  using Vec = double;
  struct Sum {
    double total_ = 0;
    void add(double v, int) { total_ += v; }
    double total() const { return total_; }
  };
  static constexpr int kWidth = 1;
  static Vec load(const double* p, int) { return *p; }
  static void store(double* p, Vec v, int) { *p = v; }
};

template <class T>
typename Lanes<T>::Vec load(const Operand& operand, int64_t row, int64_t col, int count) {
  using Vec = typename Lanes<T>::Vec;
  if (!operand.data) return Vec(1);
  const T* p = static_cast<const T*>(operand.data) + row * operand.row_stride;
  if (operand.broadcast_col) return Vec(math::widen(*p));
  return Lanes<T>::load(p + col, count);
}

// chunk_body(chunk, begin, end) for every chunk, in parallel when there is more than one.
template <class ChunkBody>
void for_each_chunk(int64_t n, const ChunkBody& chunk_body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const auto run = [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) chunk_body(c, c * kChunk, std::min(n, (c + 1) * kChunk));
  };
  if (chunks <= 1) {
    run(0, chunks);
  } else {
    parallel_for(chunks, run);
  }
}

// step(row, col, index, count) over [begin, end) in runs of at most kWidth within a row.
template <int kWidth, class Step>
void for_each_run(Grid grid, int64_t begin, int64_t end, const Step& step) {
  int64_t row = begin / grid.cols;
  int64_t col = begin % grid.cols;
  for (int64_t index = begin; index < end;) {
    const int count = int(std::min<int64_t>({kWidth, end - index, grid.cols - col}));
    step(row, col, index, count);
    index += count;
    col += count;
    if (col == grid.cols) {
      col = 0;
      ++row;
    }
  }
}

inline bool all(bool value) { return value; }

// The first operand is checked against f.in_domain when F has one (the probability form
// of BCE); false if an element was outside it.
template <class F, class Vec>
bool in_domain(const F& f, Vec first) {
  if constexpr (requires { f.in_domain(first); }) {
    return all(f.in_domain(first));
  } else {
    return true;
  }
}

// Applies f elementwise to the operands and either stores the values in `out` (None) or
// writes their sum or mean there as one element. Returns false if the first operand left
// f's domain.
template <class T, class F, class... Operands>
bool map_reduce(Grid grid, Reduction reduction, void* out, const F& f, const Operands&... operands) {
  using L = Lanes<T>;
  const int64_t n = grid.numel();
  const bool store = reduction == Reduction::None;
  const int64_t chunks = store ? 0 : (n + kChunk - 1) / kChunk;
  double single_chunk_sum = 0;
  std::vector<double> chunk_sums(chunks > 1 ? chunks : 0);
  double* sums = chunks > 1 ? chunk_sums.data() : &single_chunk_sum;
  std::atomic<bool> all_in_domain{true};
  for_each_chunk(n, [&](int64_t chunk, int64_t begin, int64_t end) {
    typename L::Sum sum;
    bool chunk_in_domain = true;
    for_each_run<L::kWidth>(grid, begin, end, [&](int64_t row, int64_t col, int64_t index, int count) {
      const auto values = std::make_tuple(load<T>(operands, row, col, count)...);
      chunk_in_domain = chunk_in_domain && in_domain(f, std::get<0>(values));
      const auto value = std::apply(f, values);
      if (store) {
        L::store(static_cast<T*>(out) + index, value, count);
      } else {
        sum.add(value, count);
      }
    });
    if (!chunk_in_domain) all_in_domain.store(false, std::memory_order_relaxed);
    if (!store) sums[chunk] = sum.total();
  });
  if (!store) {
    double total = 0;
    for (int64_t c = 0; c < chunks; ++c) total += sums[c];
    math::narrow_into(static_cast<T*>(out), reduction == Reduction::Mean ? total / double(n) : total);
  }
  return all_in_domain.load();
}

// Two elementwise outputs (gradients): out_a[i] = fa(operands at i), out_b[i] = fb(...);
// a null output is neither computed nor stored.
template <class T, class Fa, class Fb, class... Operands>
void map_pair(Grid grid, void* out_a, const Fa& fa, void* out_b, const Fb& fb, const Operands&... operands) {
  using L = Lanes<T>;
  for_each_chunk(grid.numel(), [&](int64_t, int64_t begin, int64_t end) {
    for_each_run<L::kWidth>(grid, begin, end, [&](int64_t row, int64_t col, int64_t index, int count) {
      if (out_a) L::store(static_cast<T*>(out_a) + index, fa(load<T>(operands, row, col, count)...), count);
      if (out_b) L::store(static_cast<T*>(out_b) + index, fb(load<T>(operands, row, col, count)...), count);
    });
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

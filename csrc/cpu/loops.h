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

// How a storage type is computed on: float-like types as float vectors, double one
// element at a time. Lanes past `count` load as 0 and are not stored.
template <class T>
struct Lanes {
  using Vec = VecF;
  using Sum = SumF64;
  static constexpr int kWidth = kLanes;

  FUSEDGAN_ALWAYS_INLINE static Vec load(const T* p, int count) {
    if constexpr (std::is_same_v<T, float>) {
      if (count == kWidth) return VecF::load(p);
    }
    float lanes[kWidth] = {};
    for (int i = 0; i < count; ++i) lanes[i] = math::widen(p[i]);
    return VecF::load(lanes);
  }
  FUSEDGAN_ALWAYS_INLINE static void store(T* p, Vec v, int count) {
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

// One operand along one row segment: a pointer that advances, or one value for the whole
// segment (broadcast columns, or an absent operand that reads as 1).
template <class T>
struct Cursor {
  using Vec = typename Lanes<T>::Vec;
  const T* data;
  Vec value;

  Cursor(const Operand& operand, int64_t row, int64_t col) : data(nullptr), value(1) {
    if (!operand.data) return;
    const T* p = static_cast<const T*>(operand.data) + row * operand.row_stride;
    if (operand.broadcast_col) {
      value = Vec(math::widen(*p));
    } else {
      data = p + col;
    }
  }
  FUSEDGAN_ALWAYS_INLINE Vec at(int64_t offset, int count) const { return data ? Lanes<T>::load(data + offset, count) : value; }
};

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

// step(index, count, cursors...) over [begin, end) in runs of kWidth (the last of a row
// segment shorter), the operands' cursors set up once per row segment.
template <class T, class Step, class... Operands>
FUSEDGAN_ALWAYS_INLINE void for_each_run(Grid grid, int64_t begin, int64_t end, const Step& step, const Operands&... operands) {
  constexpr int kWidth = Lanes<T>::kWidth;
  int64_t row = begin / grid.cols;
  int64_t col = begin % grid.cols;
  for (int64_t index = begin; index < end; ++row, col = 0) {
    const int64_t length = std::min(end - index, grid.cols - col);
    const auto cursors = std::make_tuple(Cursor<T>(operands, row, col)...);
    int64_t offset = 0;
    for (; offset + kWidth <= length; offset += kWidth) step(index + offset, kWidth, cursors, offset);
    if (offset < length) step(index + offset, int(length - offset), cursors, offset);
    index += length;
  }
}

template <class F, class... Cursors>
FUSEDGAN_ALWAYS_INLINE auto apply_at(const F& f, const std::tuple<Cursors...>& cursors, int64_t offset, int count) {
  return std::apply([&](const auto&... c) FUSEDGAN_LAMBDA_ALWAYS_INLINE { return f(c.at(offset, count)...); }, cursors);
}

inline bool all(bool value) { return value; }

// Whether the first operand lies in f's domain, where F declares one (the probability
// form of BCE); true otherwise.
template <class F, class... Cursors>
FUSEDGAN_ALWAYS_INLINE bool in_domain(const F& f, const std::tuple<Cursors...>& cursors, int64_t offset, int count) {
  if constexpr (requires { f.in_domain(std::get<0>(cursors).at(offset, count)); }) {
    return all(f.in_domain(std::get<0>(cursors).at(offset, count)));
  } else {
    return true;
  }
}

// Sums (or averages) f over the operands into out[0]. Where f returns ValueAndGrad (a
// loss that gives its input gradient in the same pass), the values are summed and the
// gradients stored elementwise in `grad`. Returns false if the first operand left f's
// domain.
template <class T, class F, class... Operands>
bool reduce(Grid grid, Reduction reduction, void* out, void* grad, const F& f, const Operands&... operands) {
  using L = Lanes<T>;
  const int64_t n = grid.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  double single_chunk_sum = 0;
  std::vector<double> chunk_sums(chunks > 1 ? chunks : 0);
  double* sums = chunks > 1 ? chunk_sums.data() : &single_chunk_sum;
  std::atomic<bool> all_in_domain{true};
  for_each_chunk(n, [&](int64_t chunk, int64_t begin, int64_t end) {
    typename L::Sum sum;
    bool chunk_in_domain = true;
    const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
      chunk_in_domain &= in_domain(f, cursors, offset, count);
      const auto result = apply_at(f, cursors, offset, count);
      if constexpr (math::kGivesGrad<std::decay_t<decltype(result)>>) {
        sum.add(result.value, count);
        L::store(static_cast<T*>(grad) + index, result.grad, count);
      } else {
        sum.add(result, count);
      }
    };
    for_each_run<T>(grid, begin, end, step, operands...);
    if (!chunk_in_domain) all_in_domain.store(false, std::memory_order_relaxed);
    sums[chunk] = sum.total();
  });
  double total = 0;
  for (int64_t c = 0; c < chunks; ++c) total += sums[c];
  math::narrow_into(static_cast<T*>(out), reduction == Reduction::Mean ? total / double(n) : total);
  return all_in_domain.load();
}

// Applies f elementwise to the operands and either stores the values in `out` (None) or
// writes their sum or mean there as one element. Returns false if the first operand left
// f's domain.
template <class T, class F, class... Operands>
bool map_reduce(Grid grid, Reduction reduction, void* out, const F& f, const Operands&... operands) {
  if (reduction != Reduction::None) return reduce<T>(grid, reduction, out, nullptr, f, operands...);
  T* values = static_cast<T*>(out);
  std::atomic<bool> all_in_domain{true};
  for_each_chunk(grid.numel(), [&](int64_t, int64_t begin, int64_t end) {
    bool chunk_in_domain = true;
    const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
      chunk_in_domain &= in_domain(f, cursors, offset, count);
      Lanes<T>::store(values + index, apply_at(f, cursors, offset, count), count);
    };
    for_each_run<T>(grid, begin, end, step, operands...);
    if (!chunk_in_domain) all_in_domain.store(false, std::memory_order_relaxed);
  });
  return all_in_domain.load();
}

// Two elementwise outputs (gradients): out_a[i] = fa(operands at i), out_b[i] = fb(...);
// a null output is neither computed nor stored.
template <class T, class Fa, class Fb, class... Operands>
void map_pair(Grid grid, void* out_a, const Fa& fa, void* out_b, const Fb& fb, const Operands&... operands) {
  using L = Lanes<T>;
  T* a = static_cast<T*>(out_a);
  T* b = static_cast<T*>(out_b);
  for_each_chunk(grid.numel(), [&](int64_t, int64_t begin, int64_t end) {
    const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
      if (a) L::store(a + index, apply_at(fa, cursors, offset, count), count);
      if (b) L::store(b + index, apply_at(fb, cursors, offset, count), count);
    };
    for_each_run<T>(grid, begin, end, step, operands...);
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

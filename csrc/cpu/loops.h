// The loop every CPU kernel runs: the flat range [0, n) in fixed chunks (the unit of
// parallel work and of the reduction), each chunk in runs of up to one vector that never
// cross a row of the Grid. Sums are taken per chunk in double and the chunk sums added in
// chunk order, so a reduction gives the same bits for any number of threads.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <utility>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../kernel_args.h"
#include "../math/storage.h"
#include "parallel.h"
#include "simd.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

inline constexpr int64_t kChunk = 16384;

// float32 elementwise outputs of at least this many bytes are streamed past the cache: they
// would not stay in it anyway, and a streamed store skips reading each line before
// overwriting it. Smaller ones stay in the cache for whatever reads them next.
inline constexpr int64_t kStreamingBytes = int64_t(32) << 20;

template <class T>
bool streams(int64_t n) {
  return std::is_same_v<T, float> && n * int64_t(sizeof(T)) >= kStreamingBytes;
}

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
  // load(), with the lanes past `count` set to `padding` rather than 0.
  FUSEDGAN_ALWAYS_INLINE static Vec load(const T* p, int count, float padding) {
    if (count == kWidth) return load(p, count);
    float lanes[kWidth];
    for (int i = 0; i < kWidth; ++i) lanes[i] = i < count ? float(math::widen(p[i])) : padding;
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
  // store(), streamed past the cache (see kStreamingBytes) where `streaming` and the vector is
  // whole and aligned; end_streaming() after the last.
  FUSEDGAN_ALWAYS_INLINE static void store(T* p, Vec v, int count, bool streaming) {
    if constexpr (std::is_same_v<T, float>) {
      if (streaming && count == kWidth && reinterpret_cast<uintptr_t>(p) % sizeof(F32xN) == 0) return v.stream(p);
    }
    store(p, v, count);
  }
  // Per-lane sums in double, for indexable sums of many vectors (SumF64 is the single sum's
  // form, with its float blocks inside).
  using Wide = F64xN;
  FUSEDGAN_ALWAYS_INLINE static void add_wide(Wide& total, Vec v) { total += __builtin_convertvector(v.v, F64xN); }
  static double sum_lanes(const Wide& total) { return reduce_lanes(total, Add{}); }
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
  static Vec load(const double* p, int, float) { return *p; }
  static void store(double* p, Vec v, int) { *p = v; }
  static void store(double* p, Vec v, int, bool) { *p = v; }
  using Wide = double;
  static void add_wide(Wide& total, Vec v) { total += v; }
  static double sum_lanes(Wide total) { return total; }
};

// One chunk's part of a reduction (see reduce_chunk).
struct ChunkSums {
  double first = 0;
  double second = 0;
  bool in_domain = true;
};

// Chunk sums, without a heap allocation for calls of a few chunks.
class ChunkSumsBuffer {
 public:
  explicit ChunkSumsBuffer(int64_t count) : count_(count), heap_(count > kInline ? count : 0) {}
  ChunkSums* data() { return heap_.empty() ? inline_ : heap_.data(); }
  int64_t size() const { return count_; }

 private:
  static constexpr int64_t kInline = 4;
  int64_t count_;
  ChunkSums inline_[kInline];
  std::vector<ChunkSums> heap_;
};

inline int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

// body(c) for c in [0, count), in parallel if asked (when there is more than one chunk of
// work: below that, waking the thread pool costs more than the work).
template <class Body>
void for_each_index(int64_t count, bool in_parallel, const Body& body) {
  const auto run = [&](int64_t first, int64_t last) {
    for (int64_t c = first; c < last; ++c) body(c);
  };
  if (in_parallel && count > 1) {
    parallel_for(count, run);
  } else {
    run(0, count);
  }
}

// chunk_body(chunk, begin, end) for every chunk of [0, n).
template <class ChunkBody>
void for_each_chunk(int64_t n, const ChunkBody& chunk_body) {
  for_each_index(chunks_of(n), true, [&](int64_t c) { chunk_body(c, c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

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

// An operand with one value along a row (a data set's parameter), given as that value: the
// compiler then sees it is the same on every run and computes what depends on it alone
// (1 / scale) once, not once per vector as it must for a Cursor.
template <class T>
struct Uniform {
  typename Lanes<T>::Vec value;
  FUSEDGAN_ALWAYS_INLINE typename Lanes<T>::Vec at(int64_t, int) const { return value; }
};

// The cursor of an operand along a row segment.
template <class T>
FUSEDGAN_ALWAYS_INLINE Cursor<T> cursor(const Operand& operand, int64_t row, int64_t col) {
  return Cursor<T>(operand, row, col);
}
template <class T>
FUSEDGAN_ALWAYS_INLINE Uniform<T> cursor(const Uniform<T>& uniform, int64_t, int64_t) {
  return uniform;
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
    const auto cursors = std::make_tuple(cursor<T>(operands, row, col)...);
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

// The vector type f takes for each operand (for naming f's result type).
template <class T, class ForEachOperand>
using VecFor = typename Lanes<T>::Vec;

// One chunk's part of a reduction: the sums of f's values over [begin, end) (two where f
// returns TwoSums), whether the first operand stayed in f's domain, and, where f returns
// ValueAndGrad, the gradients stored into `grad` when it is not null.
template <class T, class F, class... Operands>
FUSEDGAN_ALWAYS_INLINE ChunkSums reduce_chunk(Grid grid, int64_t begin, int64_t end, void* grad, const F& f,
                                              const Operands&... operands) {
  using L = Lanes<T>;
  using Result = decltype(f(std::declval<VecFor<T, Operands>>()...));
  typename L::Sum first, second;
  bool in_domain_so_far = true;
  T* grads = static_cast<T*>(grad);
  const bool streaming = grads && streams<T>(grid.numel());
  const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
    in_domain_so_far &= in_domain(f, cursors, offset, count);
    const Result result = apply_at(f, cursors, offset, count);
    if constexpr (math::kGivesGrad<Result>) {
      first.add(result.value, count);
      if (grads) L::store(grads + index, result.grad, count, streaming);
    } else if constexpr (math::kGivesTwoSums<Result>) {
      first.add(result.first, count);
      second.add(result.second, count);
    } else {
      first.add(result, count);
    }
  };
  for_each_run<T>(grid, begin, end, step, operands...);
  if (streaming) end_streaming();
  ChunkSums sums{first.total(), 0, in_domain_so_far};
  if constexpr (math::kGivesTwoSums<Result>) {
    sums.second = second.total();
  }
  return sums;
}


// The chunk sums added in chunk order: the same bits for any number of threads.
inline ChunkSums add_in_order(const ChunkSums* sums, int64_t count) {
  ChunkSums total;
  for (int64_t c = 0; c < count; ++c) {
    total.first += sums[c].first;
    total.second += sums[c].second;
    total.in_domain = total.in_domain && sums[c].in_domain;
  }
  return total;
}

// Sums (or averages) f over the operands into out[0]. Where f returns ValueAndGrad (a
// loss that gives its input gradient in the same pass), the values are summed and the
// gradients stored elementwise in `grad` (when not null). Returns false if the first
// operand left f's domain.
template <class T, class F, class... Operands>
bool reduce(Grid grid, Reduction reduction, void* out, void* grad, const F& f, const Operands&... operands) {
  const int64_t n = grid.numel();
  ChunkSumsBuffer buffer(chunks_of(n));
  ChunkSums* sums = buffer.data();
  for_each_index(buffer.size(), true, [&](int64_t c) {
    sums[c] = reduce_chunk<T>(grid, c * kChunk, std::min(n, (c + 1) * kChunk), grad, f, operands...);
  });
  const ChunkSums total = add_in_order(sums, buffer.size());
  math::narrow_into(static_cast<T*>(out), reduction == Reduction::Mean ? total.first / double(n) : total.first);
  return total.in_domain;
}

// f_real over the real batch and f_fake over the fake one, in one parallel pass over both
// (their chunks in one list); the sums of each batch, and the gradients where the functions
// give them.
template <class T, class FReal, class FFake>
std::pair<ChunkSums, ChunkSums> reduce_two_batches(const Batch& real, void* grad_real, const FReal& f_real,
                                                   const Batch& fake, void* grad_fake, const FFake& f_fake) {
  const int64_t n_real = real.grid.numel(), n_fake = fake.grid.numel();
  const int64_t real_chunks = chunks_of(n_real);
  ChunkSumsBuffer buffer(real_chunks + chunks_of(n_fake));
  ChunkSums* sums = buffer.data();
  for_each_index(buffer.size(), n_real + n_fake > kChunk, [&](int64_t c) {
    if (c < real_chunks) {
      sums[c] = reduce_chunk<T>(real.grid, c * kChunk, std::min(n_real, (c + 1) * kChunk), grad_real, f_real,
                                real.logits);
    } else {
      const int64_t f = c - real_chunks;
      sums[c] = reduce_chunk<T>(fake.grid, f * kChunk, std::min(n_fake, (f + 1) * kChunk), grad_fake, f_fake,
                                fake.logits);
    }
  });
  return {add_in_order(sums, real_chunks), add_in_order(sums + real_chunks, buffer.size() - real_chunks)};
}

// body(row) for every row of `length` elements, rows in parallel in groups of about a chunk.
template <class Body>
void for_each_row(int64_t rows, int64_t length, const Body& body) {
  const int64_t rows_per_group = std::max<int64_t>(1, kChunk / std::max<int64_t>(1, length));
  for_each_index((rows + rows_per_group - 1) / rows_per_group, true, [&](int64_t group) {
    const int64_t last = std::min(rows, (group + 1) * rows_per_group);
    for (int64_t row = group * rows_per_group; row < last; ++row) body(row);
  });
}

// Applies f elementwise to the operands and either stores the values in `out` (None) or
// writes their sum or mean there as one element. Returns false if the first operand left
// f's domain.
template <class T, class F, class... Operands>
bool map_reduce(Grid grid, Reduction reduction, void* out, const F& f, const Operands&... operands) {
  if (reduction != Reduction::None) return reduce<T>(grid, reduction, out, nullptr, f, operands...);
  T* values = static_cast<T*>(out);
  const bool streaming = streams<T>(grid.numel());
  std::atomic<bool> all_in_domain{true};
  for_each_chunk(grid.numel(), [&](int64_t, int64_t begin, int64_t end) {
    bool chunk_in_domain = true;
    const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
      chunk_in_domain &= in_domain(f, cursors, offset, count);
      Lanes<T>::store(values + index, apply_at(f, cursors, offset, count), count, streaming);
    };
    for_each_run<T>(grid, begin, end, step, operands...);
    if (streaming) end_streaming();
    if (!chunk_in_domain) all_in_domain.store(false, std::memory_order_relaxed);
  });
  return all_in_domain.load();
}

// Runs row_part(row, first_col, last_col) over every row of the grid in parts of at most a
// chunk (short rows whole, several to a task; long rows in pieces, in parallel), and
// returns the sums of each part's values per row, added in column order (for any thread
// count the same bits). K: how many sums a part gives (std::array<double, K>).
template <int K, class RowPart>
std::vector<std::array<double, K>> sum_rows(Grid grid, const RowPart& row_part) {
  std::vector<std::array<double, K>> totals(grid.rows);
  if (grid.cols == 0) return totals;  // empty rows sum to 0
  if (grid.cols <= kChunk) {
    const int64_t rows_per_task = std::max<int64_t>(1, kChunk / std::max<int64_t>(1, grid.cols));
    for_each_index((grid.rows + rows_per_task - 1) / rows_per_task, grid.numel() > kChunk, [&](int64_t task) {
      const int64_t last = std::min(grid.rows, (task + 1) * rows_per_task);
      for (int64_t row = task * rows_per_task; row < last; ++row) totals[row] = row_part(row, 0, grid.cols);
    });
    return totals;
  }
  const int64_t pieces = chunks_of(grid.cols);
  std::vector<std::array<double, K>> piece_sums(grid.rows * pieces);
  for_each_index(grid.rows * pieces, true, [&](int64_t p) {
    const int64_t first = (p % pieces) * kChunk;
    piece_sums[p] = row_part(p / pieces, first, std::min(grid.cols, first + kChunk));
  });
  for (int64_t row = 0; row < grid.rows; ++row) {
    for (int64_t k = 0; k < pieces; ++k) {
      for (int j = 0; j < K; ++j) totals[row][j] += piece_sums[row * pieces + k][j];
    }
  }
  return totals;
}

// Two elementwise outputs (gradients): out_a[i] = fa(operands at i), out_b[i] = fb(...);
// a null output is neither computed nor stored.
template <class T, class Fa, class Fb, class... Operands>
void map_pair(Grid grid, void* out_a, const Fa& fa, void* out_b, const Fb& fb, const Operands&... operands) {
  using L = Lanes<T>;
  T* a = static_cast<T*>(out_a);
  T* b = static_cast<T*>(out_b);
  const bool streaming = streams<T>(grid.numel());
  for_each_chunk(grid.numel(), [&](int64_t, int64_t begin, int64_t end) {
    const auto step = [&](int64_t index, int count, const auto& cursors, int64_t offset) {
      if (a) L::store(a + index, apply_at(fa, cursors, offset, count), count, streaming);
      if (b) L::store(b + index, apply_at(fb, cursors, offset, count), count, streaming);
    };
    for_each_run<T>(grid, begin, end, step, operands...);
    if (streaming) end_streaming();
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

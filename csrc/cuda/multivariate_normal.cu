// Multivariate normals on CUDA, by the functions of csrc/math/multivariate_normal.h, in
// double. Each point's z = L^-1 (x - mu) goes to a workspace (sets x N x D doubles), so that a
// thread needs no array of D values. Forward: each set's points summed as a row (loops.cuh: a
// group of threads per set, long sets in slices). Backward: a thread per point takes its z;
// the sums over the points of z and z z^T are rows again, a row per set for a tile of their
// entries at a time (so a thread's sums stay in registers whatever D is); a thread per set
// turns them into the parameters' gradients; last, a thread per point turns its z into d/dx.
// Where the forward takes the gradients, its sums over the points give the z.
#include "../math/multivariate_normal.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

inline constexpr int kEntryTile = 8;

template <class T>
using Point = SetPoint<math::MultivariateNormalSet<T>>;

// Point i of a set's z, in the workspace.
__device__ __forceinline__ double* z_of(const MultivariateNormalArgs& a, double* z, int64_t set, int64_t i) {
  return z + (set * a.n + i) * a.d;
}

template <class T>
struct PointLogLikelihood {
  MultivariateNormalArgs a;
  double* z;
  __device__ void operator()(int64_t set, int64_t i, double (&sums)[1]) const {
    const math::MultivariateNormalSet<T> s = math::multivariate_normal_set<T>(a, set);
    sums[0] += s.template whiten<double>(Point<T>{s, i}, z_of(a, z, set, i));
  }
};

template <class T>
struct StoreTotal {
  MultivariateNormalArgs a;
  T* out;
  __device__ void operator()(int64_t set, const double (&sums)[1]) const {
    // the normalizer once per set
    math::narrow_into(out + set, math::compute_t<T>(sums[0] + double(a.n) * a.log_normalizer[set]));
  }
};

// A point's z (point = set * N + i, over every set).
template <class T>
struct PointWhiten {
  MultivariateNormalArgs a;
  double* z;
  __device__ void operator()(int64_t point, int, int) const {
    if (point < 0) return;
    const int64_t set = point / a.n, i = point - set * a.n;
    const math::MultivariateNormalSet<T> s = math::multivariate_normal_set<T>(a, set);
    s.template whiten<double>(Point<T>{s, i}, z_of(a, z, set, i));
  }
};

// A tile of the entries of a set's sums over its points: entry (row, -1) is sum_i z_i,row
// (d/dloc's), entry (row, col) is sum_i z_i,row z_i,col (d/dscale_tril's, col <= row).
struct EntryTile {
  int count;
  int64_t row[kEntryTile], col[kEntryTile];
};

struct EntryTerms {
  MultivariateNormalArgs a;
  const double* z;
  EntryTile tile;
  __device__ void operator()(int64_t set, int64_t i, double (&sums)[kEntryTile]) const {
    const double* zi = z + (set * a.n + i) * a.d;
    for (int t = 0; t < tile.count; ++t) sums[t] += tile.col[t] < 0 ? zi[tile.row[t]] : zi[tile.row[t]] * zi[tile.col[t]];
  }
};

struct StoreEntries {
  MultivariateNormalArgs a;
  MultivariateNormalGrads out;
  EntryTile tile;
  __device__ void operator()(int64_t set, const double (&sums)[kEntryTile]) const {
    for (int t = 0; t < tile.count; ++t) {
      if (tile.col[t] < 0) {
        out.loc[set * a.d + tile.row[t]] = sums[t];
      } else {
        out.scale_tril[(set * a.d + tile.row[t]) * a.d + tile.col[t]] = sums[t];
      }
    }
  }
};

// A set's sums into its parameters' gradients times grad[set].
template <class T>
struct SetGradients {
  MultivariateNormalArgs a;
  const T* grad;
  MultivariateNormalGrads out;
  __device__ void operator()(int64_t set, int, int) const {
    if (set < 0) return;
    math::finish_parameter_gradients(math::multivariate_normal_set<T>(a, set), double(math::widen(grad[set])),
                                     out.loc ? out.loc + set * a.d : nullptr,
                                     out.scale_tril ? out.scale_tril + set * a.d * a.d : nullptr);
  }
};

// d/dx = -g L^-T z of a point (its z is overwritten).
template <class T>
struct PointGradient {
  MultivariateNormalArgs a;
  const T* grad;
  double* z;
  T* grad_x;
  __device__ void operator()(int64_t point, int, int) const {
    if (point < 0) return;
    const int64_t set = point / a.n;
    const math::MultivariateNormalSet<T> s = math::multivariate_normal_set<T>(a, set);
    double* w = z + point * a.d;
    s.solve_transposed(w);
    const double g = math::widen(grad[set]);
    for (int64_t c = 0; c < a.d; ++c) math::narrow_into(grad_x + point * a.d + c, math::compute_t<T>(-g * w[c]));
  }
};

double* z_workspace(const MultivariateNormalArgs& a, Launch launch) {
  const int64_t count = a.sets * a.n * a.d;
  return count > 0 ? static_cast<double*>(launch.workspace->allocate(count * int64_t(sizeof(double)))) : nullptr;
}

}  // namespace

void multivariate_normal_log_likelihood(const MultivariateNormalArgs& a, void* out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    sum_rows<1>(a.sets, a.n, PointLogLikelihood<T>{a, z_workspace(a, launch)}, StoreTotal<T>{a, static_cast<T*>(out)},
                launch);
  });
}

// The gradients of each set's log-likelihood times grad[set], written into (not added to)
// the outputs that are not null: x's in the data's type, the parameters' in double.
void multivariate_normal_log_likelihood_backward(const MultivariateNormalArgs& a, const void* grad,
                                                 const MultivariateNormalGrads& out, Launch launch) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(grad);
    double* z = z_workspace(a, launch);
    if (out.log_likelihood) {  // every point's z, and each set's log-likelihood
      sum_rows<1>(a.sets, a.n, PointLogLikelihood<T>{a, z}, StoreTotal<T>{a, static_cast<T*>(out.log_likelihood)},
                  launch);
    } else if (z) {
      for_each_row_group(a.sets * a.n, 1, PointWhiten<T>{a, z}, launch);
    }
    // The entries wanted, in tiles: sum z (loc's), then the lower triangle of sum z z^T (scale_tril's).
    EntryTile tile{};
    const auto add_entry = [&](int64_t row, int64_t col, bool last) {
      tile.row[tile.count] = row;
      tile.col[tile.count] = col;
      if (++tile.count == kEntryTile || last) {
        sum_rows<kEntryTile>(a.sets, a.n, EntryTerms{a, z, tile}, StoreEntries{a, out, tile}, launch);
        tile.count = 0;
      }
    };
    for (int64_t j = 0; out.loc && j < a.d; ++j) add_entry(j, -1, !out.scale_tril && j == a.d - 1);
    for (int64_t j = 0; out.scale_tril && j < a.d; ++j) {
      for (int64_t k = 0; k <= j; ++k) add_entry(j, k, j == a.d - 1 && k == j);
    }
    if (out.loc || out.scale_tril) for_each_row_group(a.sets, 1, SetGradients<T>{a, g, out}, launch);
    if (out.x && z) for_each_row_group(a.sets * a.n, 1, PointGradient<T>{a, g, z, static_cast<T*>(out.x)}, launch);
  });
}

}  // namespace fusedgan::cuda

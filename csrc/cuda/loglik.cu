// Log-likelihoods on CUDA: each row (data set) summed by a group of threads (loops.cuh:
// sum_rows; long rows in slices), so each sum has the same bits on every run. A family
// split into normalizer + data term takes the normalizer and its costly partials once per row, in
// double, where the parameters are constant along the row, as the CPU does.
#include "../math/loglik.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

// An element's log-density (a split family's: its data term).
template <bool kSplit, class LogPdf, class V>
__device__ double element_log_density(const LogPdf& log_pdf, V x, V p0, V p1, V p2) {
  if constexpr (kSplit) {
    return double(LogPdf::data_term(x, p0, p1, p2));
  } else {
    return double(log_pdf(x, p0, p1, p2));
  }
}

// A row's log-likelihood from the sum of its elements' (a split family's: plus the normalizer
// per point).
template <class T, class LogPdf, bool kSplit>
__device__ void store_row_log_likelihood(const LogLikelihoodArgs& a, int64_t row, double sum, T* out) {
  if constexpr (kSplit) sum += double(a.grid.cols) * math::row_normalizer<LogPdf, T>(a, row);
  math::narrow_into(out + row, math::compute_t<T>(sum));
}

template <class T, class LogPdf, bool kSplit>
struct LogDensity {
  LogLikelihoodArgs a;
  LogPdf log_pdf;
  __device__ void operator()(int64_t row, int64_t col, double (&sums)[1]) const {
    sums[0] += element_log_density<kSplit>(log_pdf, load<T>(a.x, row, col), load<T>(a.params[0], row, col),
                                           load<T>(a.params[1], row, col), load<T>(a.params[2], row, col));
  }
};

template <class T, class LogPdf, bool kSplit>
struct StoreLogLikelihood {
  LogLikelihoodArgs a;
  T* out;
  __device__ void operator()(int64_t row, const double (&sums)[1]) const {
    store_row_log_likelihood<T, LogPdf, kSplit>(a, row, sums[0], out);
  }
};

constexpr int kValue = kMaxParams;  // the log-likelihood's slot in the backward's sums

// A split family's costly partial by parameter k, for a gradient stored per element (a data
// set of one point, or a parameter expanded along the data); 0 otherwise.
template <class T, class LogPdf, bool kSplit>
__device__ math::compute_t<T> costly_per_element(const LogLikelihoodArgs& a, int64_t row, int k) {
  if constexpr (kSplit) {
    return math::compute_t<T>(math::row_costly_partials<LogPdf, T>(a, row).params[k]);
  } else {
    return 0;
  }
}

// An element's gradients times grad[row]: d/dx (kWithX) and the per-element parameter gradients
// stored, the per-row ones added to the row's sums (a split family's: the data's partials),
// and where asked its log-density to the row's log-likelihood.
template <class T, class LogPdf, bool kSplit, bool kWithX>
struct GradientTerms {
  LogLikelihoodArgs a;
  const T* grad;
  LogLikelihoodGrads out;
  LogPdf log_pdf;
  __device__ void operator()(int64_t row, int64_t col, double (&sums)[kMaxParams + 1]) const {
    const auto g = math::widen(grad[row]);
    const int64_t i = row * a.grid.cols + col;
    const auto x = load<T>(a.x, row, col), p0 = load<T>(a.params[0], row, col), p1 = load<T>(a.params[1], row, col),
               p2 = load<T>(a.params[2], row, col);
    const auto p = [&] {
      if constexpr (kSplit) {
        return LogPdf::template data_partials<kWithX>(x, p0, p1, p2);
      } else {
        return log_pdf.template partials<kWithX>(x, p0, p1, p2);
      }
    }();
    if constexpr (kWithX) math::narrow_into(static_cast<T*>(out.x) + i, g * p.x);
    for (int k = 0; k < kMaxParams; ++k) {
      if (out.per_row[k]) {
        sums[k] += double(p.params[k]);  // times the row's g when stored
      } else if (out.params[k]) {
        math::narrow_into(static_cast<T*>(out.params[k]) + i, g * (p.params[k] + costly_per_element<T, LogPdf, kSplit>(a, row, k)));
      }
    }
    if (out.value) sums[kValue] += element_log_density<kSplit>(log_pdf, x, p0, p1, p2);
  }
};

// The per-row gradients (a split family's: plus its costly partials times the row's length),
// times the row's g, and where asked the row's log-likelihood.
template <class T, class LogPdf, bool kSplit>
struct StoreRowGradients {
  LogLikelihoodArgs a;
  const T* grad;
  LogLikelihoodGrads out;
  __device__ void operator()(int64_t row, const double (&sums)[kMaxParams + 1]) const {
    if (out.value) store_row_log_likelihood<T, LogPdf, kSplit>(a, row, sums[kValue], static_cast<T*>(out.value));
    double totals[kMaxParams] = {sums[0], sums[1], sums[2]};
    if constexpr (kSplit) {
      const auto costly = math::row_costly_partials<LogPdf, T>(a, row);
      for (int k = 0; k < kMaxParams; ++k) totals[k] += double(a.grid.cols) * costly.params[k];
    }
    for (int k = 0; k < kMaxParams; ++k) {
      if (out.per_row[k]) math::narrow_scaled_into(static_cast<T*>(out.params[k]) + row, totals[k], grad[row]);
    }
  }
};

}  // namespace

void log_likelihood(const LogLikelihoodArgs& a, void* out, Launch where) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      using LogPdf = decltype(log_pdf);
      with_flag(math::kSplits<LogPdf> && math::params_per_row(a), [&](auto split) {
        constexpr bool kSplit = math::kSplits<LogPdf> && decltype(split)::value;
        sum_rows<1>(a.grid.rows, a.grid.cols, LogDensity<T, LogPdf, kSplit>{a, log_pdf},
                    StoreLogLikelihood<T, LogPdf, kSplit>{a, static_cast<T*>(out)}, where);
      });
    });
  });
}

void log_likelihood_backward(const LogLikelihoodArgs& a, const void* grad, const LogLikelihoodGrads& out,
                             Launch where) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const T* g = static_cast<const T*>(grad);
    math::with_log_pdf(a.family, [&](auto log_pdf) {
      using LogPdf = decltype(log_pdf);
      with_flag(math::kSplits<LogPdf> && math::params_per_row(a), [&](auto split) {
        with_flag(out.x != nullptr, [&](auto with_x) {
          constexpr bool kSplit = math::kSplits<LogPdf> && decltype(split)::value;
          sum_rows<kMaxParams + 1>(a.grid.rows, a.grid.cols,
                                   GradientTerms<T, LogPdf, kSplit, decltype(with_x)::value>{a, g, out, log_pdf},
                                   StoreRowGradients<T, LogPdf, kSplit>{a, g, out}, where);
        });
      });
    });
  });
}

}  // namespace fusedgan::cuda

// The Newton fits' helpers on CUDA, in double: the beta's sums of log x and log(1 - x) per
// data set, each set a row (loops.cuh's sum_rows: a group of threads per row, long rows in
// slices); the di- and trigammas, a thread per element.
#include "../math/fits.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

struct LogTermsOf {
  LogSumArgs a;
  __device__ void operator()(int64_t row, int64_t col, double (&sums)[2]) const {
    const auto terms = math::log_terms(a.x[row * a.length + col]);
    sums[0] += terms.log_x;
    sums[1] += terms.log_complement;
  }
};

struct StoreLogSums {
  double* out;
  __device__ void operator()(int64_t row, const double (&sums)[2]) const {
    out[2 * row] = sums[0];
    out[2 * row + 1] = sums[1];
  }
};

struct PolygammasOf {
  PolygammaArgs a;
  __device__ void operator()(int64_t i, int, int) const {
    if (i < 0) return;
    const auto values = math::digamma_and_trigamma(a.x[i]);
    a.digamma[i] = values.digamma;
    a.trigamma[i] = values.trigamma;
  }
};

}  // namespace

void log_sums(const LogSumArgs& a, double* out, Launch launch) {
  sum_rows<2>(a.rows, a.length, LogTermsOf{a}, StoreLogSums{out}, launch);
}

void digamma_and_trigamma(const PolygammaArgs& a, Launch launch) { for_each_row_group(a.n, 1, PolygammasOf{a}, launch); }

}  // namespace fusedgan::cuda

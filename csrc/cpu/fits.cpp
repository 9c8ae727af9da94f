// The Newton fits' helpers in double vectors. The beta's sums of log x and log(1 - x) per data
// set: sets in parallel, each along its row with per-lane sums added in a fixed tree at its
// end, so a set's sums have the same bits for any thread count. The di- and trigammas:
// elementwise, in chunks in parallel.
#include "../math/fits.h"
#include "kernels.h"
#include "sets.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

using L = DoubleLanes;

void log_sums(const LogSumArgs& a, double* out) {
  for_each_set(a.rows, a.length, [&] {
    return [&](int64_t row) {
      const double* x = a.x + row * a.length;
      L::Sum log_x, log_complement;
      for (int64_t first = 0; first < a.length; first += L::kWidth) {
        const int count = int(std::min<int64_t>(L::kWidth, a.length - first));
        const auto terms = math::log_terms(L::load(x + first, count));
        log_x.add(terms.log_x, count);
        log_complement.add(terms.log_complement, count);
      }
      out[2 * row] = log_x.total();
      out[2 * row + 1] = log_complement.total();
    };
  });
}

void digamma_and_trigamma(const PolygammaArgs& a) {
  for_each_chunk(a.n, [&](int64_t, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i += L::kWidth) {
      const int count = int(std::min<int64_t>(L::kWidth, end - i));
      const auto values = math::digamma_and_trigamma(L::load(a.x + i, count));
      L::store(a.digamma + i, values.digamma, count);
      L::store(a.trigamma + i, values.trigamma, count);
    }
  });
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

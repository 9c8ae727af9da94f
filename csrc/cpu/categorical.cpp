// Label counts: each row's histogram of its labels, rows in parallel. The counts are whole
// numbers, so they are the same for any order and number of threads.
#include <atomic>
#include <vector>

#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

bool label_counts(const LabelCountArgs& a) {
  // Few classes: four interleaved histograms, so that a run of equal labels does not make
  // each increment wait on the one before.
  const int copies = a.classes <= 1024 ? 4 : 1;
  std::atomic<bool> in_range{true};
  for_each_row(a.rows, a.points, [&](int64_t row) {
    thread_local std::vector<int64_t> histograms;
    histograms.assign(size_t(copies * a.classes), 0);
    // Locals, not a's fields or the vector: the histograms' int64 stores could alias those.
    int64_t* const histogram = histograms.data();
    const int64_t* const labels = a.labels + row * a.points;
    const int64_t points = a.points, classes = a.classes;
    bool row_in_range = true;
    const auto count = [&](int64_t* copy, int64_t i) FUSEDGAN_LAMBDA_ALWAYS_INLINE {
      const uint64_t label = uint64_t(labels[i]);  // a negative label wraps past classes
      const bool inside = label < uint64_t(classes);
      row_in_range &= inside;
      copy[inside ? label : 0] += inside;
    };
    int64_t i = 0;
    if (copies == 4) {
      for (; i + 4 <= points; i += 4) {
        for (int k = 0; k < 4; ++k) count(histogram + k * classes, i + k);
      }
    }
    for (; i < points; ++i) count(histogram, i);
    double* counts = a.counts + row * classes;
    for (int64_t c = 0; c < classes; ++c) {
      int64_t total = 0;
      for (int k = 0; k < copies; ++k) total += histogram[k * classes + c];
      counts[c] = double(total);
    }
    if (!row_in_range) in_range.store(false, std::memory_order_relaxed);
  });
  return in_range.load();
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

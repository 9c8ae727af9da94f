// Label counts: each row's histogram of its labels, rows in parallel. The counts are whole
// numbers, so they are the same for any order and number of threads.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "loops.h"
#include "simd.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {
namespace {

constexpr int64_t kByteCounterClasses = 16;  // the most classes the byte counters below take

// Few classes: four interleaved histograms, so that a run of equal labels does not make each
// increment wait on the one before.
int64_t histogram_copies(int64_t classes) { return classes <= 1024 ? 4 : 1; }

// Counts one row's labels into histogram[0, classes), which holds histogram_copies(classes)
// histograms; false if a label lies outside that range.
bool count_labels(const int64_t* labels, int64_t points, int64_t classes, int64_t* histogram) {
  const int64_t copies = histogram_copies(classes);
  std::fill_n(histogram, copies * classes, 0);
  bool in_range = true;
  const auto count = [&](int64_t* copy, int64_t i) FUSEDGAN_LAMBDA_ALWAYS_INLINE {
    const uint64_t label = uint64_t(labels[i]);  // a negative label wraps past classes
    const bool inside = label < uint64_t(classes);
    in_range &= inside;
    copy[inside ? label : 0] += inside;
  };
  int64_t i = 0;
  if (copies == 4) {
    for (; i + 4 <= points; i += 4) {
      for (int k = 0; k < 4; ++k) count(histogram + k * classes, i + k);
    }
  }
  for (; i < points; ++i) count(histogram, i);
  for (int64_t c = 0; c < classes; ++c) {
    for (int k = 1; k < copies; ++k) histogram[c] += histogram[k * classes + c];
  }
  return in_range;
}

#if defined(__AVX2__)
// Up to 16 classes, a vector of int64 labels at a time: each label adds 1 << 8·label to a word
// of byte counters for labels 0-7, and 1 << 8·(label - 8) to one for labels 8-15. The
// instruction's shift gives 0 for a count of 64 or more (a negative one included), so each
// label lands in exactly one word, and one outside [0, 16) in none; the OR of all labels
// catches those, labels in [classes, 16) show as counts there. Byte counters would wrap
// after 255 adds, so they are emptied into the histogram every 255 vectors.
constexpr int kWords = kLanes / 2;
typedef uint64_t U64xN __attribute__((vector_size(8 * kWords)));

FUSEDGAN_ALWAYS_INLINE U64xN one_shifted_left(U64xN count) {
#if defined(__AVX512F__)
  return reinterpret_cast<U64xN>(_mm512_sllv_epi64(_mm512_set1_epi64(1), reinterpret_cast<__m512i>(count)));
#else
  return reinterpret_cast<U64xN>(_mm256_sllv_epi64(_mm256_set1_epi64x(1), reinterpret_cast<__m256i>(count)));
#endif
}

bool count_few_labels(const int64_t* labels, int64_t points, int64_t classes, int64_t* histogram) {
  std::fill_n(histogram, kByteCounterClasses, 0);
  U64xN every_label_ored = {};
  int64_t i = 0;
  while (points - i >= kWords) {
    U64xN low = {}, high = {};
    const int64_t end = i + std::min<int64_t>(255, (points - i) / kWords) * kWords;
    for (; i < end; i += kWords) {
      U64xN label;
      memcpy(&label, labels + i, sizeof label);
      every_label_ored |= label;
      low += one_shifted_left(label << 3);
      high += one_shifted_left((label << 3) - 64);
    }
    for (int word = 0; word < kWords; ++word) {
      for (int byte = 0; byte < 8; ++byte) {
        histogram[byte] += (low[word] >> 8 * byte) & 255;
        histogram[8 + byte] += (high[word] >> 8 * byte) & 255;
      }
    }
  }
  uint64_t ored = 0;
  for (int word = 0; word < kWords; ++word) ored |= every_label_ored[word];
  for (; i < points; ++i) {
    const uint64_t label = uint64_t(labels[i]);
    ored |= label;
    if (label < kByteCounterClasses) ++histogram[label];
  }
  return ored < kByteCounterClasses &&
         std::all_of(histogram + classes, histogram + kByteCounterClasses, [](int64_t n) { return n == 0; });
}
#endif

}  // namespace

bool label_counts(const LabelCountArgs& a) {
  std::atomic<bool> in_range{true};
  for_each_row(a.rows, a.points, [&](int64_t row) {
    thread_local std::vector<int64_t> histogram;
    histogram.resize(size_t(std::max(histogram_copies(a.classes) * a.classes, kByteCounterClasses)));
    const int64_t* labels = a.labels + row * a.points;
#if defined(__AVX2__)
    const bool row_in_range = a.classes <= kByteCounterClasses
                                  ? count_few_labels(labels, a.points, a.classes, histogram.data())
                                  : count_labels(labels, a.points, a.classes, histogram.data());
#else
    const bool row_in_range = count_labels(labels, a.points, a.classes, histogram.data());
#endif
    std::copy_n(histogram.data(), a.classes, a.counts + row * a.classes);
    if (!row_in_range) in_range.store(false, std::memory_order_relaxed);
  });
  return in_range.load();
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// Label counts on CUDA: a thread per label adds 1 to its row's count, with atomicAdd on
// doubles; the counts are whole numbers, so the order of the additions does not change them.
// A label outside [0, classes) adds NaN to its row's first count instead (the host cannot be
// told without a synchronisation).
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

__global__ void __launch_bounds__(kThreads) label_counts_kernel(LabelCountArgs a) {
  const int64_t n = a.rows * a.points;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads) {
    const int64_t row = i / a.points;
    const int64_t label = a.labels[i];
    const bool inside = label >= 0 && label < a.classes;
    atomicAdd(a.counts + row * a.classes + (inside ? label : 0), inside ? 1.0 : __builtin_nan(""));
  }
}

}  // namespace

bool label_counts(const LabelCountArgs& a, Launch where) {
  check(cudaMemsetAsync(a.counts, 0, size_t(a.rows * a.classes) * sizeof(double), stream_of(where)), "label counts");
  const int64_t n = a.rows * a.points;
  if (n > 0) launch(label_counts_kernel, blocks_for(n), where, a);
  return true;
}

}  // namespace fusedgan::cuda

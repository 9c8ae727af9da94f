// Entropy of probability rows and of softmax rows on CUDA: a group of threads per row (a
// block for long rows, a few threads for short ones), its lanes reading consecutive elements
// and meeting in fixed trees, with the element terms of csrc/math/entropy.h. Probabilities
// are not checked (that would cost a host synchronisation): a negative one gives NaN. (The
// binary form is an elementwise loss: elementwise.cu.)
#include "../math/entropy.h"
#include "loops.cuh"

namespace fusedgan::cuda {
namespace {

struct Max {
  __device__ double operator()(double a, double b) const { return math::softmax_max(a, b); }
};

// Row `row` of the input; none (length 0) for row -1, the threads of a group without a row,
// which add nothing but take part in the group's reductions.
template <class T>
struct Row {
  const T* data;
  int64_t length;
  __device__ Row(const RowArgs& a, int64_t row)
      : data(static_cast<const T*>(a.input) + (row < 0 ? 0 : row * a.length)), length(row < 0 ? 0 : a.length) {}
  __device__ double operator[](int64_t i) const { return math::widen(data[i]); }
};

// The softmax statistics of a row, known to every lane of its group.
template <class T>
__device__ math::SoftmaxRow softmax_row(const Row<T>& r, int lane, int group) {
  double m = -HUGE_VAL;
  for (int64_t i = lane; i < r.length; i += group) m = math::softmax_max(m, r[i]);
  m = group_reduce(m, group, Max{});
  double s = 0, t = 0, below_max = 0;
  for (int64_t i = lane; i < r.length; i += group) {
    const math::SoftmaxTerms<double> terms = math::softmax_terms(r[i], m);
    s += terms.e;
    t += terms.t;
    below_max += terms.below_max;
  }
  return {m, group_sum(s, group), group_sum(t, group), group_sum(below_max, group)};
}

template <class T>
struct Entropy {
  RowArgs a;
  T* out;
  __device__ void operator()(int64_t row, int lane, int group) const {
    const Row<T> r(a, row);
    double sum = 0;
    for (int64_t i = lane; i < r.length; i += group) sum += math::entr(r[i]);
    sum = group_sum(sum, group);
    if (row >= 0 && lane == 0) math::narrow_into(out + row, math::compute_t<T>(sum * a.scale));
  }
};

template <class T>
struct EntropyBackward {
  RowArgs a;
  const T* grad;
  T* grad_input;
  __device__ void operator()(int64_t row, int lane, int group) const {
    if (row < 0) return;
    const Row<T> r(a, row);
    const double g = double(math::widen(grad[row])) * a.scale;
    for (int64_t i = lane; i < r.length; i += group) {
      math::narrow_into(grad_input + row * a.length + i, math::compute_t<T>(g * math::entr_grad(r[i])));
    }
  }
};

template <class T>
__device__ void store_entropy(const RowArgs& a, int64_t row, const math::SoftmaxRow& stats, T* out) {
  math::narrow_into(out + row, math::compute_t<T>(stats.entropy() * a.scale));
}

template <class T>
struct EntropyWithLogits {
  RowArgs a;
  T* out;
  __device__ void operator()(int64_t row, int lane, int group) const {
    const math::SoftmaxRow stats = softmax_row(Row<T>(a, row), lane, group);
    if (row >= 0 && lane == 0) store_entropy(a, row, stats, out);
  }
};

template <class T>
struct EntropyWithLogitsBackward {
  RowArgs a;
  const T* grad;
  T* grad_input;
  T* value;  // the entropies too, where not null
  __device__ void operator()(int64_t row, int lane, int group) const {
    const Row<T> r(a, row);
    const math::SoftmaxRow stats = softmax_row(r, lane, group);
    if (row < 0) return;
    if (value && lane == 0) store_entropy(a, row, stats, value);
    // The unit's gradient rounded to T, then times the row's incoming gradient: as autograd
    // scales a gradient kept from the forward pass, so that both give the same bits.
    for (int64_t i = lane; i < r.length; i += group) {
      math::narrow_scaled_into(grad_input + row * a.length + i, a.scale * math::entropy_with_logits_grad(r[i], stats),
                               grad[row]);
    }
  }
};

template <class T>
T* typed(void* p) {
  return static_cast<T*>(p);
}
template <class T>
const T* typed(const void* p) {
  return static_cast<const T*>(p);
}

// Kernel<T>{a, pointers as T...} over the rows of a, in a's dtype.
template <template <class> class Kernel, class... Pointers>
void for_rows(const RowArgs& a, Launch launch, Pointers... pointers) {
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    for_each_row_group(a.rows, a.length, Kernel<T>{a, typed<T>(pointers)...}, launch);
  });
}

}  // namespace

bool entropy(const RowArgs& a, void* out, Launch launch) {
  for_rows<Entropy>(a, launch, out);
  return true;
}

void entropy_backward(const RowArgs& a, const void* grad, void* grad_input, Launch launch) {
  for_rows<EntropyBackward>(a, launch, grad, grad_input);
}

void entropy_with_logits(const RowArgs& a, void* out, Launch launch) { for_rows<EntropyWithLogits>(a, launch, out); }

void entropy_with_logits_backward(const RowArgs& a, const void* grad, void* grad_input, void* value, Launch launch) {
  for_rows<EntropyWithLogitsBackward>(a, launch, grad, grad_input, value);
}

}  // namespace fusedgan::cuda

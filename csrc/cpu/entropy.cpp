// Entropy of probability rows and of softmax rows, with the element terms of
// csrc/math/entropy.h, rows in parallel. A row runs in vectors along it (float lanes, sums in
// double: Lanes<T>), reduced across the lanes in fixed trees at its end. Short rows, whose
// lane reductions would cost more than their arithmetic, run kLanes at a time instead, a row
// per lane: the rows' j-th elements are gathered into one vector, and their reductions are
// plain vector arithmetic, in float. (The binary form is an elementwise loss: elementwise.cpp.)
#include <atomic>
#include <cmath>
#include <type_traits>

#include "../math/entropy.h"
#include "kernels.h"
#include "loops.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

namespace {

template <class T>
using Vec = typename Lanes<T>::Vec;

// body(index, v, count) over a row in vectors, the last one partial: its lanes past count
// hold `padding`.
template <class T, class Body>
FUSEDGAN_ALWAYS_INLINE void for_each_vector(const T* row, int64_t length, float padding, const Body& body) {
  constexpr int kWidth = Lanes<T>::kWidth;
  int64_t i = 0;
  for (; i + kWidth <= length; i += kWidth) body(i, Lanes<T>::load(row + i, kWidth), kWidth);
  if (i < length) body(i, Lanes<T>::load(row + i, int(length - i), padding), int(length - i));
}

struct Max {
  float operator()(float a, float b) const { return math::softmax_max(a, b); }
};

// The maximum over a vector's lanes, NaN winning.
inline double lanes_max(double v) { return v; }
inline double lanes_max(VecF v) { return reduce_lanes(v.v, Max{}); }

// A row's softmax statistics: its max, then s and t in one more pass.
template <class T>
math::SoftmaxRow softmax_row(const T* z, int64_t length) {
  Vec<T> m(-HUGE_VALF);
  for_each_vector(z, length, -HUGE_VALF, [&](int64_t, Vec<T> v, int) { m = math::softmax_max(m, v); });
  const double max = lanes_max(m);
  typename Lanes<T>::Sum s, t, below_max;
  const Vec<T> shift(max);
  for_each_vector(z, length, 0.0f, [&](int64_t, Vec<T> v, int count) {
    const math::SoftmaxTerms<Vec<T>> terms = math::softmax_terms(v, shift);
    s.add(terms.e, count);
    t.add(terms.t, count);
    below_max.add(terms.below_max, count);
  });
  return {max, s.total(), t.total(), below_max.total()};
}

// ---- short rows, a row per lane

// Rows up to this long run as blocks of kLanes rows (where T computes in float vectors).
inline constexpr int64_t kShortRow = 64;

// Column j of the block of kLanes rows of `length` from `first` on: lane i holds row i's j-th.
template <class T>
VecF column(const T* first, int64_t length, int64_t j) {
  if constexpr (std::is_same_v<T, float>) {
    return gather(first + j, int32_t(length));
  } else {
    float lanes[kLanes];
    for (int i = 0; i < kLanes; ++i) lanes[i] = math::widen(first[i * length + j]);
    return VecF::load(lanes);
  }
}

// The softmax statistics of each lane's row, and the sum of the terms below its max.
struct SoftmaxLanes {
  VecF max, s, t, below_max;
  VecF entropy() const { return math::log_of_softmax_sum(s, below_max) - t / s; }
};

// The statistics of a block's rows; `columns` and `e` get the block's columns and their
// e^(z - m), for a gradient to reuse.
template <class T>
SoftmaxLanes softmax_lanes(const T* first, int64_t length, VecF (&columns)[kShortRow], VecF (&e)[kShortRow]) {
  VecF m(-HUGE_VALF), s(0.0f), t(0.0f), below_max(0.0f);
  for (int64_t j = 0; j < length; ++j) {
    columns[j] = column(first, length, j);
    m = math::softmax_max(m, columns[j]);
  }
  for (int64_t j = 0; j < length; ++j) {
    const math::SoftmaxTerms<VecF> terms = math::softmax_terms(columns[j], m);
    e[j] = terms.e;
    s = s + terms.e;
    t = t + terms.t;
    below_max = below_max + terms.below_max;
  }
  return {m, s, t, below_max};
}

// Column j of a block of kLanes rows of `length` from `first` on, stored: lane i into row i.
template <class T>
void store_column(T* first, int64_t length, int64_t j, VecF values) {
  if constexpr (std::is_same_v<T, float>) {
    scatter(first + j, int32_t(length), values);
  } else {
    float lanes[kLanes];
    values.store(lanes);
    for (int i = 0; i < kLanes; ++i) math::narrow_into(first + i * length + j, lanes[i]);
  }
}

// ---- the forms: each a function of a row, and of a block of kLanes short rows from `first`
// on, that returns whether they were in the op's domain (probabilities: none negative or NaN)

template <class T>
struct Form {
  RowArgs a;
  const T* grad;  // backward only
  T* out;
  T* value;  // a backward's values too, where not null
  const T* input(int64_t row) const { return static_cast<const T*>(a.input) + row * a.length; }
  T* row_out(int64_t row) const { return out + row * a.length; }
  double scaled_grad(int64_t row) const { return double(math::widen(grad[row])) * a.scale; }
  // A value per lane's row, times the scale, into to[first...].
  void store_block(T* to, int64_t first, VecF values) const { Lanes<T>::store(to + first, values * VecF(a.scale), kLanes); }
  // A row's value, times the scale, into to[row].
  void store_row(T* to, int64_t row, double row_value) const {
    math::narrow_into(to + row, math::compute_t<T>(row_value * a.scale));
  }
};

template <class T>
struct Entropy : Form<T> {
  bool operator()(int64_t row) const {
    typename Lanes<T>::Sum sum;
    const Vec<T> zero(0.0f);
    auto in_domain = zero >= zero;  // lane by lane, one test per row
    for_each_vector(this->input(row), this->a.length, 0.0f, [&](int64_t, Vec<T> q, int count) {
      in_domain = in_domain & (q >= zero);
      sum.add(math::entr(q), count);
    });
    this->store_row(this->out, row, sum.total());
    return all(in_domain);
  }
  bool block(int64_t first) const {
    VecF sum(0.0f);
    Mask in_domain = sum >= sum;
    for (int64_t j = 0; j < this->a.length; ++j) {
      const VecF q = column(this->input(first), this->a.length, j);
      in_domain = in_domain & (q >= VecF(0.0f));
      sum = sum + math::entr(q);
    }
    this->store_block(this->out, first, sum);
    return all(in_domain);
  }
};

template <class T>
struct EntropyBackward : Form<T> {
  bool operator()(int64_t row) const {
    const Vec<T> g(this->scaled_grad(row));
    T* out = this->row_out(row);
    for_each_vector(this->input(row), this->a.length, 0.0f, [&](int64_t i, Vec<T> q, int count) {
      Lanes<T>::store(out + i, g * math::entr_grad(q), count);
    });
    return true;
  }
  bool block(int64_t first) const {  // elementwise: nothing to reduce
    for (int64_t row = first; row < first + kLanes; ++row) (*this)(row);
    return true;
  }
};

template <class T>
struct EntropyWithLogits : Form<T> {
  bool operator()(int64_t row) const {
    this->store_row(this->out, row, softmax_row(this->input(row), this->a.length).entropy());
    return true;
  }
  bool block(int64_t first) const {
    VecF columns[kShortRow], e[kShortRow];
    this->store_block(this->out, first, softmax_lanes(this->input(first), this->a.length, columns, e).entropy());
    return true;
  }
};

template <class T>
struct EntropyWithLogitsBackward : Form<T> {
  bool operator()(int64_t row) const {
    const math::SoftmaxRow stats = softmax_row(this->input(row), this->a.length);
    if (this->value) this->store_row(this->value, row, stats.entropy());
    store_gradient(row, stats);
    return true;
  }
  // A row per lane throughout: the gradient's columns from the statistics' pass (its
  // exponentials reused), stored back into the rows.
  bool block(int64_t first) const {
    const int64_t length = this->a.length;
    VecF columns[kShortRow], e[kShortRow];
    const SoftmaxLanes stats = softmax_lanes(this->input(first), length, columns, e);
    if (this->value) this->store_block(this->value, first, stats.entropy());
    const VecF inv_s = VecF(1.0f) / stats.s, t_over_s = stats.t / stats.s;
    const VecF grads = Lanes<T>::load(this->grad + first, kLanes), unit(float(this->a.scale));
    for (int64_t j = 0; j < length; ++j) {
      const VecF shifted = columns[j] - stats.max;
      store_column(this->row_out(first), length, j,
                   unit * math::entropy_with_logits_grad(e[j] * inv_s, shifted - t_over_s) * grads);
    }
    return true;
  }
  // The unit's gradient rounded, then times the row's incoming gradient: as autograd scales a
  // gradient kept from the forward pass, so that both give the same bits.
  void store_gradient(int64_t row, const math::SoftmaxRow& stats) const {
    const Vec<T> g(math::widen(this->grad[row])), unit(this->a.scale), m(stats.max), r(1 / stats.s),
        h(stats.t / stats.s);
    T* out = this->row_out(row);
    for_each_vector(this->input(row), this->a.length, 0.0f, [&](int64_t i, Vec<T> z, int count) {
      Lanes<T>::store(out + i, unit * math::entropy_with_logits_grad(z, m, r, h) * g, count);
    });
  }
};

// Applies Form<T> to every row (short rows: to every full block of them, and to the rows
// after the last block one by one); false if a row was outside the op's domain.
template <template <class> class Form>
bool for_rows(const RowArgs& a, const void* grad, void* out, void* value = nullptr) {
  std::atomic<bool> in_domain{true};
  const auto note = [&](bool rows_in_domain) {
    if (!rows_in_domain) in_domain.store(false, std::memory_order_relaxed);
  };
  math::visit_dtype(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    const Form<T> form{{a, static_cast<const T*>(grad), static_cast<T*>(out), static_cast<T*>(value)}};
    int64_t blocks = 0;
    if constexpr (Lanes<T>::kWidth > 1) {
      if (a.length <= kShortRow) blocks = a.rows / kLanes;
    }
    if constexpr (Lanes<T>::kWidth > 1) {
      for_each_row(blocks, a.length * kLanes, [&](int64_t b) { note(form.block(b * kLanes)); });
    }
    for_each_row(a.rows - blocks * kLanes, a.length, [&](int64_t r) { note(form(blocks * kLanes + r)); });
  });
  return in_domain.load();
}

}  // namespace

bool entropy(const RowArgs& a, void* out) { return for_rows<Entropy>(a, nullptr, out); }

void entropy_backward(const RowArgs& a, const void* grad, void* grad_input) {
  for_rows<EntropyBackward>(a, grad, grad_input);
}

void entropy_with_logits(const RowArgs& a, void* out) { for_rows<EntropyWithLogits>(a, nullptr, out); }

void entropy_with_logits_backward(const RowArgs& a, const void* grad, void* grad_input, void* value) {
  for_rows<EntropyWithLogitsBackward>(a, grad, grad_input, value);
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

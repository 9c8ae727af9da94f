// Entropy, H(q) = -sum_i q_i log q_i with 0 log 0 = 0 (the source notes, section 2), in three
// forms. Values and gradients are multiplied by `scale` = 1 / log(base) (1 for nats).
//   probabilities, over a row:  H = sum entr(q_i), entr(q) = -q log q;  dH/dq_i = -(log q_i + 1)
//   softmax of logits z:        with m = max z, s = sum e^(z-m), t = sum e^(z-m) (z-m):
//                               H = log s - t / s;  dH/dz_j = -p_j ((z_j - m) - t / s), p_j = e^(z_j-m) / s
//                               (a logit of -inf has p = 0 and adds nothing, so H stays finite)
//   binary, of sigmoid(x):      H = log(1 + e) + |x| e / (1 + e) with e = e^-|x|, the same as
//                               -p log p - (1-p) log(1-p) without its cancellation at large |x|;
//                               dH/dx = -x sigmoid(x) sigmoid(-x)
// The row forms are sequential loops over one row, in double, which the CPU runs (rows in
// parallel); CUDA spreads a row over a group of threads with the same element terms.
#pragma once

#include "logistic.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

template <class V>
FUSEDGAN_HOST_DEVICE V entr(V q) {
  return select(q == V(0), V(0), -q * log(q));  // log of a negative q is NaN
}

template <class V>
FUSEDGAN_HOST_DEVICE V entr_grad(V q) {
  return -(log(q) + V(1));
}

// Entropy of one row of probabilities; `in_domain` is false if any q < 0 or NaN.
struct RowEntropy {
  double value;
  bool in_domain;
};

template <class T>
FUSEDGAN_HOST_DEVICE RowEntropy entropy_row(const T* q, int64_t length, double scale) {
  double sum = 0;
  bool in_domain = true;
  for (int64_t i = 0; i < length; ++i) {
    const double qi = widen(q[i]);
    in_domain = in_domain && qi >= 0;
    sum += entr(qi);
  }
  return {sum * scale, in_domain};
}

template <class T>
FUSEDGAN_HOST_DEVICE void entropy_row_backward(double grad, const T* q, int64_t length, double scale, T* grad_q) {
  for (int64_t i = 0; i < length; ++i) narrow_into(grad_q + i, compute_t<T>(grad * scale * entr_grad(double(widen(q[i])))));
}

// The row statistics of the softmax form: max, s and t.
struct SoftmaxRow {
  double max, s, t;
  FUSEDGAN_HOST_DEVICE double entropy() const { return log(s) - t / s; }
};

// The larger of a running maximum and a logit; NaN wins, and propagates.
FUSEDGAN_HOST_DEVICE double softmax_max(double m, double z) { return z > m || z != z ? z : m; }

// A logit's terms of s and t, given the row's max.
struct SoftmaxTerms {
  double e, t;
};
FUSEDGAN_HOST_DEVICE SoftmaxTerms softmax_terms(double z, double max) {
  const double shifted = z - max;
  const double e = exp(shifted);
  return {e, weighted(e, shifted)};
}

template <class T>
FUSEDGAN_HOST_DEVICE SoftmaxRow softmax_row(const T* z, int64_t length) {
  double m = -HUGE_VAL;
  for (int64_t i = 0; i < length; ++i) m = softmax_max(m, widen(z[i]));
  double s = 0, t = 0;
  for (int64_t i = 0; i < length; ++i) {
    const SoftmaxTerms terms = softmax_terms(widen(z[i]), m);
    s += terms.e;
    t += terms.t;
  }
  return {m, s, t};
}

template <class T>
FUSEDGAN_HOST_DEVICE double entropy_with_logits_row(const T* z, int64_t length, double scale) {
  return softmax_row(z, length).entropy() * scale;
}

// dH/dz_j = -p_j (log p_j + H), given p_j and log p_j + H = (z_j - m) - t / s; 0 where p_j = 0.
template <class V>
FUSEDGAN_HOST_DEVICE V entropy_with_logits_grad(V p, V log_p_plus_entropy) {
  return -weighted(p, log_p_plus_entropy);
}

// dH/dz of a logit of a row with statistics `row`.
FUSEDGAN_HOST_DEVICE double entropy_with_logits_grad(double z, const SoftmaxRow& row) {
  const double shifted = z - row.max;
  return entropy_with_logits_grad(exp(shifted) / row.s, shifted - row.t / row.s);
}

template <class T>
FUSEDGAN_HOST_DEVICE void entropy_with_logits_row_backward(double grad, const T* z, int64_t length, double scale,
                                                           T* grad_z) {
  const SoftmaxRow row = softmax_row(z, length);
  for (int64_t i = 0; i < length; ++i) {
    narrow_into(grad_z + i, compute_t<T>(grad * scale * entropy_with_logits_grad(double(widen(z[i])), row)));
  }
}

// ---- The row forms as functions of a row index, which the CPU applies to every row of a
// RowArgs (rows in parallel). Forwards write out[row]; backwards
// read grad[row] and write the row's gradient into out. They return whether the row was in
// the op's domain (probabilities: no negative or NaN value).

template <class T>
struct Rows {
  RowArgs a;
  const T* grad;  // backward only
  T* out;
  FUSEDGAN_HOST_DEVICE const T* row_input(int64_t row) const { return static_cast<const T*>(a.input) + row * a.length; }
  FUSEDGAN_HOST_DEVICE double row_grad(int64_t row) const { return widen(grad[row]); }
};

template <class T>
struct EntropyRows : Rows<T> {
  FUSEDGAN_HOST_DEVICE bool operator()(int64_t row) const {
    const RowEntropy h = entropy_row(this->row_input(row), this->a.length, this->a.scale);
    narrow_into(this->out + row, compute_t<T>(h.value));
    return h.in_domain;
  }
};

template <class T>
struct EntropyRowsBackward : Rows<T> {
  FUSEDGAN_HOST_DEVICE bool operator()(int64_t row) const {
    entropy_row_backward(this->row_grad(row), this->row_input(row), this->a.length, this->a.scale,
                         this->out + row * this->a.length);
    return true;
  }
};

template <class T>
struct EntropyWithLogitsRows : Rows<T> {
  FUSEDGAN_HOST_DEVICE bool operator()(int64_t row) const {
    narrow_into(this->out + row,
                compute_t<T>(entropy_with_logits_row(this->row_input(row), this->a.length, this->a.scale)));
    return true;
  }
};

template <class T>
struct EntropyWithLogitsRowsBackward : Rows<T> {
  FUSEDGAN_HOST_DEVICE bool operator()(int64_t row) const {
    entropy_with_logits_row_backward(this->row_grad(row), this->row_input(row), this->a.length, this->a.scale,
                                     this->out + row * this->a.length);
    return true;
  }
};

// ---- binary entropy, elementwise

template <class V>
FUSEDGAN_HOST_DEVICE V binary_entropy_with_logits(V x) {
  const V e = exp_minus(abs(x));
  return log1p_unit(e) + weighted(e / (V(1) + e), abs(x));
}

// sigmoid(x) sigmoid(-x) = e / (1 + e)^2 with e = e^-|x|; it is 0 at x = +-inf, where the
// product with x is taken as 0.
template <class V>
FUSEDGAN_HOST_DEVICE V binary_entropy_with_logits_grad(V x) {
  const V e = exp_minus(abs(x));
  const V r = V(1) / (V(1) + e);
  return -weighted(e * r * r, x);
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

// The GAN game's costs (Goodfellow, NIPS 2016 tutorial, section 3.2), per element of a batch
// of discriminator logits x, D = sigmoid(x):
//   discriminator: J(D) = 1/2 mean_real bce(x, real_label) + 1/2 mean_fake bce(x, fake_label),
//                  with bce(x, y) = -y log D - (1 - y) log(1 - D), the logits form of bce.h;
//   generator:     minimax            1/2 log(1 - D) = -1/2 softplus(x),   d/dx = -1/2 sigmoid(x)
//                  non_saturating    -1/2 log D      =  1/2 softplus(-x),  d/dx = -1/2 sigmoid(-x)
//                  maximum_likelihood -1/2 exp(x) (exp of the logit = D / (1 - D)), d/dx = the same;
// and the discriminator's statistics for logs: mean D over each batch and its accuracy
// (real counted right where x > 0, fake where x < 0).
#pragma once

#include "bce.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// One batch's term of J(D): bce(x, label) and scale * its derivative.
struct DiscriminatorTerm {
  double label;
  double scale;
  template <class V>
  FUSEDGAN_HOST_DEVICE ValueAndGrad<V> operator()(V x) const {
    const V e = exp_minus(abs(x));
    const V y(label), one(1);
    return {bce_with_logits_given(x, e, y, one, one), V(scale) * bce_with_logits_grad_input_given(x, e, y, one, one)};
  }
};

// J(G) per element and scale * its derivative. For the minimax and non-saturating kinds, with
// z = x or -x: softplus(z) = max(z, 0) + log(1 + e^-|x|), and sigmoid(z) from the same e.
template <GeneratorKind kind>
struct GeneratorTerm {
  double scale;
  template <class V>
  FUSEDGAN_HOST_DEVICE static V z_of(V x) {
    return kind == GeneratorKind::Minimax ? x : -x;
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V derivative_given(V x, V e) {
    if constexpr (kind == GeneratorKind::MaximumLikelihood) {
      return V(-0.5) * exp(x);
    } else {
      return V(-0.5) * sigmoid_given(z_of(x), e);
    }
  }
  // d/dx of J(G)'s term (unscaled).
  template <class V>
  FUSEDGAN_HOST_DEVICE static V derivative(V x) {
    return derivative_given(x, exp_minus(abs(x)));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE ValueAndGrad<V> operator()(V x) const {
    if constexpr (kind == GeneratorKind::MaximumLikelihood) {
      const V value = derivative(x);  // -exp(x) / 2 is its own derivative
      return {value, V(scale) * value};
    } else {
      const V e = exp_minus(abs(x));
      const V half(kind == GeneratorKind::Minimax ? -0.5 : 0.5);
      return {half * (positive_part(z_of(x)) + log1p_unit(e)), V(scale) * derivative_given(x, e)};
    }
  }
};

// Calls run(term) with the GeneratorTerm of `kind` (a template argument, so that each
// kind's loop is compiled on its own).
template <class Run>
void with_generator_term(GeneratorKind kind, double scale, const Run& run) {
  switch (kind) {
    case GeneratorKind::Minimax:
      return run(GeneratorTerm<GeneratorKind::Minimax>{scale});
    case GeneratorKind::NonSaturating:
      return run(GeneratorTerm<GeneratorKind::NonSaturating>{scale});
    case GeneratorKind::MaximumLikelihood:
      return run(GeneratorTerm<GeneratorKind::MaximumLikelihood>{scale});
  }
}

// Per element: D(x), and whether the discriminator is right about it.
struct DiscriminatorScore {
  bool real;
  template <class V>
  FUSEDGAN_HOST_DEVICE TwoSums<V> operator()(V x) const {
    const V right = real ? select(x > V(0), V(1), V(0)) : select(x < V(0), V(1), V(0));
    return {sigmoid(x), right};
  }
};

// The batches' sums into the outputs. The sums are those of the terms above: the first
// sum of each batch, and for the statistics the second (the right answers) as well.
FUSEDGAN_HOST_DEVICE double discriminator_cost_total(double real_sum, int64_t real_n, double fake_sum, int64_t fake_n) {
  return 0.5 * real_sum / double(real_n) + 0.5 * fake_sum / double(fake_n);
}

template <class T>
FUSEDGAN_HOST_DEVICE void discriminator_stats_into(T* out, double real_scores, double real_right, int64_t real_n,
                                                   double fake_scores, double fake_right, int64_t fake_n) {
  narrow_into(out, compute_t<T>(real_scores / double(real_n)));
  narrow_into(out + 1, compute_t<T>(fake_scores / double(fake_n)));
  narrow_into(out + 2, compute_t<T>((real_right + fake_right) / double(real_n + fake_n)));
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

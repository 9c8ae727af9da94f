// Log-densities of i.i.d. data, log f(x; theta), per element, and their partial derivatives
// with respect to x and to each parameter (the source notes, section 1: the log-likelihood of
// a data set is the sum of these over its points).
//   normal(loc m, scale s):        -z^2/2 - log s - log(2 pi)/2, z = (x - m)/s
//                                  d/dx = -z/s, d/dm = z/s, d/ds = (z^2 - 1)/s
//   laplace(loc m, scale b):       -|x - m|/b - log(2b)
//                                  d/dx = -sign(x - m)/b, d/dm = sign(x - m)/b, d/db = (|x - m| - b)/b^2
//   exponential(rate r):           log r - r x for x >= 0, -inf below
//                                  d/dx = -r, d/dr = 1/r - x (0 outside the support)
//   bernoulli(logits l):           x l - softplus(l) = -bce_with_logits(l, x)
//                                  d/dx = l, d/dl = x - sigmoid(l)
//   poisson(rate r):               k log r - r - lgamma(k + 1)  (0 log 0 = 0)
//                                  d/dk = log r - psi(k + 1), d/dr = k/r - 1
//   student_t(df n, loc m, scale s): lgamma((n+1)/2) - lgamma(n/2) - log(n pi)/2 - log s
//                                  - (n+1)/2 log(1 + z^2/n), z = (x - m)/s; with w = (n+1)/(n + z^2):
//                                  d/dx = -w z/s, d/dm = w z/s, d/ds = (w z^2 - 1)/s,
//                                  d/dn = (psi((n+1)/2) - psi(n/2) - 1/n - log(1 + z^2/n) + w z^2/n) / 2
//   gamma, beta, lognormal, weibull, half_normal, negative_binomial, binomial, geometric and
//   von_mises below: each struct's kDensity gives its density, data_partials its partials.
// Each functor takes (x, a, b, c) with the family's parameters in order; unused ones read as 1.
// Most split into a term of the parameters alone and the data's (SplitLogPdf below).
// It also names its family, its data and parameters (with their supports), and its density
// for the documentation: families.def lists the functors, and everything else about a family (the
// Family enum, the torch op's checks, the Python functions) is expanded from that list.
#pragma once

#include <type_traits>

#include "../kernel_args.h"
#include "bce.h"
#include "storage.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

// Where a parameter lives: anywhere, or above 0 (checked by the op on the CPU).
enum class Support { Real, Positive };
struct ParamSpec {
  const char* name;
  Support support;
};

// The partial derivatives of one element's log-density: by x, and by each parameter.
template <class V>
struct Partials {
  V x;
  V params[kMaxParams];
};

// d/dx by `partial`, where wanted: a caller that stores no d/dx asks for partials
// <kWithX = false>, and the counts' families leave out its digamma, most of their backward's cost.
template <bool kWithX, class Partial>
FUSEDGAN_HOST_DEVICE auto x_partial(const Partial& partial) {
  if constexpr (kWithX) {
    return partial();
  } else {
    return decltype(partial())(0);
  }
}

// The parameters' partial derivatives of a term of the parameters alone.
template <class V>
struct ParamPartials {
  V params[kMaxParams];
};

// A family whose log-density is normalizer(params) + data_term(x, params): the parameters'
// terms alone (logs, lgammas: most of the cost) and the data's. Its partials are
// data_partials, holding the normalizer's cheap ones too (the scale's (z^2 - 1)/s keeps the
// digits that z^2/s - 1/s would lose), plus costly_partials, the parameters' alone that
// cost special functions (digamma; none by default). A data set whose parameters are
// constant along it takes the normalizer and the costly partials once, in double
// (row_normalizer below, on the CPU and CUDA). The whole density and its partials are the
// sums, derived here. A data term divides by a parameter as a product with its reciprocal,
// which the loops take once per data set where a division per element would cost the most.
template <class Family>
struct SplitLogPdf {
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V, V, V) {
    return {{V(0), V(0), V(0)}};
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V a, V b, V c) const {
    return Family::normalizer(a, b, c) + Family::data_term(x, a, b, c);
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V a, V b, V c) const {
    Partials<V> p = Family::template data_partials<kWithX>(x, a, b, c);
    const ParamPartials<V> costly = Family::costly_partials(a, b, c);
    for (int k = 0; k < kMaxParams; ++k) p.params[k] = p.params[k] + costly.params[k];
    return p;
  }
};

struct NormalLogPdf : SplitLogPdf<NormalLogPdf> {
  static constexpr const char* kName = "normal";
  static constexpr const char* kData = "x";  // the data argument's name
  static constexpr ParamSpec kParams[] = {{"loc", Support::Real}, {"scale", Support::Positive}};
  static constexpr const char* kDensity = "log N(x; loc, scale) = -z^2/2 - log(scale) - log(2 pi)/2, z = (x - loc) / scale";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V, V scale, V) {
    return -log(scale) - V(kHalfLog2Pi);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V loc, V scale, V) {
    const V z = (x - loc) * (V(1) / scale);  // 1/scale taken once per data set, out of the loop
    return V(-0.5) * z * z;
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V loc, V scale, V) {
    const V inv_s = V(1) / scale;  // one division rather than three
    const V z = (x - loc) * inv_s;
    const V z_over_s = z * inv_s;
    return {-z_over_s, {z_over_s, (z * z - V(1)) * inv_s, V(0)}};
  }
};

struct LaplaceLogPdf : SplitLogPdf<LaplaceLogPdf> {
  static constexpr const char* kName = "laplace";
  static constexpr const char* kData = "x";  // the data argument's name
  static constexpr ParamSpec kParams[] = {{"loc", Support::Real}, {"scale", Support::Positive}};
  static constexpr const char* kDensity = "log Laplace(x; loc, scale) = -|x - loc| / scale - log(2 scale)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V, V scale, V) {
    return -log(V(2) * scale);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V loc, V scale, V) {
    return -abs(x - loc) * (V(1) / scale);
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V loc, V scale, V) {
    const V d = x - loc;
    const V inv_b = V(1) / scale;
    const V sign = select(d > V(0), V(1), select(d < V(0), V(-1), d * V(0)));  // NaN for NaN
    return {-sign * inv_b, {sign * inv_b, (abs(d) * inv_b - V(1)) * inv_b, V(0)}};
  }
};

struct ExponentialLogPdf : SplitLogPdf<ExponentialLogPdf> {
  static constexpr const char* kName = "exponential";
  static constexpr const char* kData = "x";  // the data argument's name
  static constexpr ParamSpec kParams[] = {{"rate", Support::Positive}};
  static constexpr const char* kDensity = "log Exponential(x; rate) = log(rate) - rate x (-inf for x < 0)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V rate, V, V) {
    return log(rate);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V rate, V, V) {
    return select(x < V(0), V(-__builtin_inff()), -rate * x);
  }
  // Outside the support the density is a constant -inf: no gradient.
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V rate, V, V) {
    const auto outside = x < V(0);
    return {select(outside, V(0), -rate), {select(outside, V(0), V(1) / rate - x), V(0), V(0)}};
  }
};

// Not split: x logits - softplus(logits) would cancel at large |logits| where the single
// stable form does not.
struct BernoulliLogPmf {
  static constexpr const char* kName = "bernoulli";
  static constexpr const char* kData = "x";  // the data argument's name
  static constexpr ParamSpec kParams[] = {{"logits", Support::Real}};
  static constexpr const char* kDensity = "log Bernoulli(x; sigmoid(logits)) = x logits - softplus(logits), stable for any logits (x may be soft, in [0, 1])";
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V x, V logits, V, V) const {
    return -bce_with_logits(logits, x, V(1), V(1));
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V x, V logits, V, V) const {
    return {logits, {-bce_with_logits_grad_input(logits, x, V(1), V(1)), V(0), V(0)}};
  }
};

struct PoissonLogPmf : SplitLogPdf<PoissonLogPmf> {
  static constexpr const char* kName = "poisson";
  static constexpr const char* kData = "k";  // the data argument's name
  static constexpr ParamSpec kParams[] = {{"rate", Support::Positive}};
  static constexpr const char* kDensity = "log Poisson(k; rate) = k log(rate) - rate - lgamma(k + 1); k holds counts, and its gradient is the continuous extension log(rate) - digamma(k + 1), as torch.distributions.Poisson gives";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V rate, V, V) {
    return -rate;
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V k, V rate, V, V) {
    return weighted(k, log(rate)) - lgamma(k + V(1));
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V k, V rate, V, V) {
    return {x_partial<kWithX>([&] { return log(rate) - digamma(k + V(1)); }), {k / rate - V(1), V(0), V(0)}};
  }
};

// lgamma(h + 1/2) - lgamma(h) - log(h)/2, the Student's t normalizer's part in df = 2h, and its
// derivative psi(h + 1/2) - psi(h) - 1/(2h). Each lgamma grows as h log h while the difference
// tends to -1/(8h): computed as it reads, it kept no digit past df ~ 1e7 in float and 1e16 in
// double. From h = 15 on, their asymptotic series in 1/h hold to double precision.
// Each branch reads its own range of h (NaN taking the direct one), so that the other's overflow
// reaches neither the value nor its derivatives.
template <class V>
FUSEDGAN_HOST_DEVICE V lgamma_half_step(V h) {
  const auto large = h >= V(15);
  const V small_h = select(large, V(1), h), r = V(1) / select(large, h, V(15)), r2 = r * r;
  const V series = r * (V(-1.0 / 8) + r2 * (V(1.0 / 192) + r2 * (V(-1.0 / 640) + r2 * (V(17.0 / 14336) +
                   r2 * (V(-31.0 / 18432) + r2 * (V(691.0 / 180224) + r2 * V(-5461.0 / 425984)))))));
  return select(large, series, lgamma(small_h + V(0.5)) - lgamma(small_h) - V(0.5) * log(small_h));
}
template <class V>
FUSEDGAN_HOST_DEVICE V digamma_half_step(V h) {
  const auto large = h >= V(15);
  const V small_h = select(large, V(1), h), r = V(1) / select(large, h, V(15)), r2 = r * r;
  const V series = r2 * (V(1.0 / 8) + r2 * (V(-1.0 / 64) + r2 * (V(1.0 / 128) + r2 * (V(-17.0 / 2048) +
                   r2 * (V(31.0 / 2048) + r2 * (V(-691.0 / 16384) + r2 * V(5461.0 / 32768)))))));
  return select(large, series, digamma(small_h + V(0.5)) - digamma(small_h) - V(0.5) / small_h);
}

struct StudentTLogPdf : SplitLogPdf<StudentTLogPdf> {
  static constexpr const char* kName = "student_t";
  static constexpr const char* kData = "x";  // the data argument's name
  static constexpr ParamSpec kParams[] = {{"df", Support::Positive}, {"loc", Support::Real}, {"scale", Support::Positive}};
  static constexpr const char* kDensity = "log StudentT(x; df, loc, scale), with gradients for all four (digamma for df)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V df, V, V scale) {
    return lgamma_half_step(V(0.5) * df) - log(scale) - V(kHalfLog2Pi);  // log(df pi)/2 = log(h)/2 + log(2 pi)/2
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V df, V loc, V scale) {
    const V z = (x - loc) * (V(1) / scale);
    return -(V(0.5) * df + V(0.5)) * log1p(z * z * (V(1) / df));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V df, V, V) {
    return {{V(0.5) * digamma_half_step(V(0.5) * df), V(0), V(0)}};
  }
  // With w = (df + 1) / (df + z^2).
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V df, V loc, V scale) {
    const V inv_s = V(1) / scale;
    const V z = (x - loc) * inv_s;
    const V z2 = z * z;
    const V w = (df + V(1)) / (df + z2);
    const V d_df = V(0.5) * (w * z2 / df - log1p(z2 / df));
    return {-w * z * inv_s, {d_df, w * z * inv_s, (w * z2 - V(1)) * inv_s}};
  }
};

// -inf outside a family's support, the value inside. `tested` is what the support test reads
// (the datum, or a sum of the inputs it reads): a NaN there fails every test yet lies outside
// no support, so its NaN value passes through rather than reading as -inf.
template <class M, class V>
FUSEDGAN_HOST_DEVICE V inside(M in_support, V tested, V value) {
  return select(in_support | is_nan(tested), value, V(-__builtin_inff()));
}

// The partials where the data lie in the support (or are NaN, as above); outside, the density
// is a constant -inf: no gradient.
template <class M, class V>
FUSEDGAN_HOST_DEVICE Partials<V> inside(M in_support, V tested, Partials<V> p) {
  const auto kept = in_support | is_nan(tested);
  p.x = select(kept, p.x, V(0));
  for (int k = 0; k < kMaxParams; ++k) p.params[k] = select(kept, p.params[k], V(0));
  return p;
}

struct GammaLogPdf : SplitLogPdf<GammaLogPdf> {
  static constexpr const char* kName = "gamma";
  static constexpr const char* kData = "x";
  static constexpr ParamSpec kParams[] = {{"concentration", Support::Positive}, {"rate", Support::Positive}};
  static constexpr const char* kDensity = "log Gamma(x; concentration a, rate b) = a log(b) - lgamma(a) + (a - 1) log(x) - b x (-inf for x < 0)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V a, V b, V) {
    return a * log(b) - lgamma(a);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V a, V b, V) {
    return inside(x >= V(0), x, weighted(a - V(1), log(x)) - b * x);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V a, V, V) {
    return {{-digamma(a), V(0), V(0)}};
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V a, V b, V) {
    return inside(x >= V(0), x, Partials<V>{weighted(a - V(1), V(1) / x) - b, {log(b) + log(x), a / b - x, V(0)}});
  }
};

struct BetaLogPdf : SplitLogPdf<BetaLogPdf> {
  static constexpr const char* kName = "beta";
  static constexpr const char* kData = "x";
  static constexpr ParamSpec kParams[] = {{"concentration1", Support::Positive}, {"concentration0", Support::Positive}};
  static constexpr const char* kDensity = "log Beta(x; concentration1 a, concentration0 b) = (a - 1) log(x) + (b - 1) log(1 - x) - log B(a, b) (-inf outside [0, 1])";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V a, V b, V) {
    return lgamma(a + b) - lgamma(a) - lgamma(b);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V a, V b, V) {
    return inside((x >= V(0)) & (x <= V(1)), x, weighted(a - V(1), log(x)) + weighted(b - V(1), log1p(-x)));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V a, V b, V) {
    const V both = digamma(a + b);
    return {{both - digamma(a), both - digamma(b), V(0)}};
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V a, V b, V) {
    const V log_1mx = log1p(-x);
    return inside((x >= V(0)) & (x <= V(1)), x,
                  Partials<V>{weighted(a - V(1), V(1) / x) - weighted(b - V(1), V(1) / (V(1) - x)), {log(x), log_1mx, V(0)}});
  }
};

struct LogNormalLogPdf : SplitLogPdf<LogNormalLogPdf> {
  static constexpr const char* kName = "lognormal";
  static constexpr const char* kData = "x";
  static constexpr ParamSpec kParams[] = {{"loc", Support::Real}, {"scale", Support::Positive}};
  static constexpr const char* kDensity = "log LogNormal(x; loc, scale) = -z^2/2 - log(scale) - log(2 pi)/2 - log(x), z = (log(x) - loc) / scale (-inf for x <= 0)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V, V scale, V) {
    return -log(scale) - V(kHalfLog2Pi);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V loc, V scale, V) {
    const V log_x = log(x);
    const V z = (log_x - loc) * (V(1) / scale);
    return inside(x > V(0), x, V(-0.5) * z * z - log_x);
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V loc, V scale, V) {
    const V inv_s = V(1) / scale;
    const V z = (log(x) - loc) * inv_s;
    const V z_over_s = z * inv_s;
    return inside(x > V(0), x, Partials<V>{-(z_over_s + V(1)) / x, {z_over_s, (z * z - V(1)) * inv_s, V(0)}});
  }
};

struct WeibullLogPdf : SplitLogPdf<WeibullLogPdf> {
  static constexpr const char* kName = "weibull";
  static constexpr const char* kData = "x";
  static constexpr ParamSpec kParams[] = {{"scale", Support::Positive}, {"concentration", Support::Positive}};
  static constexpr const char* kDensity = "log Weibull(x; scale s, concentration k) = log(k / s) + (k - 1) log(x / s) - (x / s)^k (-inf for x < 0)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V scale, V k, V) {
    return log(k) - log(scale);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V scale, V k, V) {
    const V log_u = log(x / scale);
    return inside(x >= V(0), x, weighted(k - V(1), log_u) - exp(k * log_u));
  }
  // With u = x / s and w = u^k.
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V scale, V k, V) {
    const V log_u = log(x / scale);
    const V w = exp(k * log_u);
    // d/dx = (k - 1) / x - (k / s) u^(k - 1), each term 0 where its exponent is (at x = 0 too)
    const V d_x = x_partial<kWithX>([&] { return weighted(k - V(1), V(1) / x) - k / scale * exp(weighted(k - V(1), log_u)); });
    return inside(x >= V(0), x, Partials<V>{d_x, {k * (w - V(1)) / scale, V(1) / k + log_u * (V(1) - w), V(0)}});
  }
};

struct HalfNormalLogPdf : SplitLogPdf<HalfNormalLogPdf> {
  static constexpr const char* kName = "half_normal";
  static constexpr const char* kData = "x";
  static constexpr ParamSpec kParams[] = {{"scale", Support::Positive}};
  static constexpr const char* kDensity = "log HalfNormal(x; scale) = -z^2/2 - log(scale) + log(2/pi)/2, z = x / scale (-inf for x < 0)";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V scale, V, V) {
    return -log(scale) - V(kHalfLog2Pi - 0.69314718055994530942);  // log(2/pi)/2 = log 2 - log(2 pi)/2
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V scale, V, V) {
    const V z = x * (V(1) / scale);
    return inside(x >= V(0), x, V(-0.5) * z * z);
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V scale, V, V) {
    const V inv_s = V(1) / scale;
    const V z = x * inv_s;
    return inside(x >= V(0), x, Partials<V>{-z * inv_s, {(z * z - V(1)) * inv_s, V(0), V(0)}});
  }
};

// Counts of successes before total_count failures, each trial a success with probability
// sigmoid(logits), as torch.distributions.NegativeBinomial.
struct NegativeBinomialLogPmf : SplitLogPdf<NegativeBinomialLogPmf> {
  static constexpr const char* kName = "negative_binomial";
  static constexpr const char* kData = "k";
  static constexpr ParamSpec kParams[] = {{"total_count", Support::Positive}, {"logits", Support::Real}};
  static constexpr const char* kDensity = "log NegativeBinomial(k; total_count r, sigmoid(logits)) = lgamma(k + r) - lgamma(k + 1) - lgamma(r) - r softplus(logits) - k softplus(-logits): k successes before the r-th failure (-inf for k < 0), its gradient in k and r the continuous extension";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V r, V logits, V) {
    return -lgamma(r) - r * softplus_pair(logits).of_x;
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V k, V r, V logits, V) {
    return inside(k >= V(0), k, lgamma(k + r) - lgamma(k + V(1)) - weighted(k, softplus_pair(logits).of_minus_x));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V r, V, V) {
    return {{-digamma(r), V(0), V(0)}};
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V k, V r, V logits, V) {
    const SoftplusPair<V> softplus = softplus_pair(logits);
    const V psi_kr = digamma(k + r);
    return inside(k >= V(0), k, Partials<V>{x_partial<kWithX>([&] { return psi_kr - digamma(k + V(1)) - softplus.of_minus_x; }),
                                         {psi_kr - softplus.of_x, k * sigmoid(-logits) - r * sigmoid(logits), V(0)}});
  }
};

// The logits' terms as -k softplus(-l) - (n - k) softplus(l): both at most 0, no
// cancellation. Only lgamma(n + 1) is the parameters' alone: a normalizer holding n softplus(l)
// would cancel against the data's k l.
struct BinomialLogPmf : SplitLogPdf<BinomialLogPmf> {
  static constexpr const char* kName = "binomial";
  static constexpr const char* kData = "k";
  static constexpr ParamSpec kParams[] = {{"total_count", Support::Positive}, {"logits", Support::Real}};
  static constexpr const char* kDensity = "log Binomial(k; total_count n, sigmoid(logits)) = log C(n, k) - k softplus(-logits) - (n - k) softplus(logits) (-inf outside [0, n]), its gradient in k and n the continuous extension";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V n, V, V) {
    return lgamma(n + V(1));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V k, V n, V logits, V) {
    const SoftplusPair<V> softplus = softplus_pair(logits);
    const V rest = n - k;
    return inside((k >= V(0)) & (rest >= V(0)), k + n,
                  -lgamma(k + V(1)) - lgamma(rest + V(1)) - weighted(k, softplus.of_minus_x) - weighted(rest, softplus.of_x));
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V n, V, V) {
    return {{digamma(n + V(1)), V(0), V(0)}};
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V k, V n, V logits, V) {
    const SoftplusPair<V> softplus = softplus_pair(logits);
    const V rest = n - k;
    const V psi_rest = digamma(rest + V(1));
    return inside((k >= V(0)) & (rest >= V(0)), k + n,
                  Partials<V>{x_partial<kWithX>([&] { return psi_rest - digamma(k + V(1)) + logits; }),
                              {-psi_rest - softplus.of_x, k * sigmoid(-logits) - rest * sigmoid(logits), V(0)}});
  }
};

// Failures before the first success, as torch.distributions.Geometric.
struct GeometricLogPmf {
  static constexpr const char* kName = "geometric";
  static constexpr const char* kData = "k";
  static constexpr ParamSpec kParams[] = {{"logits", Support::Real}};
  static constexpr const char* kDensity = "log Geometric(k; sigmoid(logits)) = -k softplus(logits) - softplus(-logits): k failures before the first success (-inf for k < 0)";
  template <class V>
  FUSEDGAN_HOST_DEVICE V operator()(V k, V logits, V, V) const {
    const SoftplusPair<V> softplus = softplus_pair(logits);
    return inside(k >= V(0), k, -weighted(k, softplus.of_x) - softplus.of_minus_x);
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE Partials<V> partials(V k, V logits, V, V) const {
    const SoftplusPair<V> softplus = softplus_pair(logits);
    return inside(k >= V(0), k, Partials<V>{-softplus.of_x, {sigmoid(-logits) - k * sigmoid(logits), V(0), V(0)}});
  }
};

// kappa (cos(x - loc) - 1) as -2 kappa sin^2((x - loc)/2), and log I_0 as log i0e + kappa, so that
// a concentrated density near its mode does not cancel two large terms.
struct VonMisesLogPdf : SplitLogPdf<VonMisesLogPdf> {
  static constexpr const char* kName = "von_mises";
  static constexpr const char* kData = "x";
  static constexpr ParamSpec kParams[] = {{"loc", Support::Real}, {"concentration", Support::Positive}};
  static constexpr const char* kDensity = "log VonMises(x; loc, concentration k) = k cos(x - loc) - log(2 pi I_0(k)), x an angle in radians";
  template <class V>
  FUSEDGAN_HOST_DEVICE static V normalizer(V, V kappa, V) {
    return -log(i0e(kappa)) - V(2 * kHalfLog2Pi);
  }
  template <class V>
  FUSEDGAN_HOST_DEVICE static V data_term(V x, V loc, V kappa, V) {
    const V s = sin_cos(V(0.5) * (x - loc)).sin;  // as data_partials takes it, so that one pass shares it
    return V(-2) * kappa * s * s;
  }
  // d/dk log i0e(k) = i1e(k)/i0e(k) - 1
  template <class V>
  FUSEDGAN_HOST_DEVICE static ParamPartials<V> costly_partials(V, V kappa, V) {
    return {{V(0), V(1) - i1e(kappa) / i0e(kappa), V(0)}};
  }
  template <bool kWithX = true, class V>
  FUSEDGAN_HOST_DEVICE static Partials<V> data_partials(V x, V loc, V kappa, V) {
    const SinCos<V> half = sin_cos(V(0.5) * (x - loc));
    const V kappa_sin = V(2) * kappa * half.sin * half.cos;  // kappa sin(x - loc), from the half angle's
    return {-kappa_sin, {kappa_sin, V(-2) * half.sin * half.sin, V(0)}};
  }
};

// Whether a family splits its log-density (SplitLogPdf).
template <class LogPdf>
inline constexpr bool kSplits = std::is_base_of_v<SplitLogPdf<LogPdf>, LogPdf>;

// Whether every parameter has one value per row (a data set's parameters): then a split
// family takes its normalizer and its costly partials once per row, in double.
inline bool params_per_row(const LogLikelihoodArgs& a) {
  if (a.grid.cols <= 1) return true;
  for (const Operand& p : a.params) {
    if (p.data && !p.broadcast_col) return false;
  }
  return true;
}

// The parameters of a row along which they are constant, in double (absent ones read as 1).
struct RowParams {
  double p[kMaxParams];
};
template <class T>
FUSEDGAN_HOST_DEVICE RowParams row_params(const LogLikelihoodArgs& a, int64_t row) {
  RowParams r;
  for (int k = 0; k < kMaxParams; ++k) {
    r.p[k] = a.params[k].data ? double(widen(static_cast<const T*>(a.params[k].data)[row * a.params[k].row_stride])) : 1.0;
  }
  return r;
}

template <class LogPdf, class T>
FUSEDGAN_HOST_DEVICE double row_normalizer(const LogLikelihoodArgs& a, int64_t row) {
  const RowParams r = row_params<T>(a, row);
  return LogPdf::normalizer(r.p[0], r.p[1], r.p[2]);
}

template <class LogPdf, class T>
FUSEDGAN_HOST_DEVICE ParamPartials<double> row_costly_partials(const LogLikelihoodArgs& a, int64_t row) {
  const RowParams r = row_params<T>(a, row);
  return LogPdf::costly_partials(r.p[0], r.p[1], r.p[2]);
}

// Calls run(log_pdf) with the functor of `family`.
template <class Run>
void with_log_pdf(Family family, const Run& run) {
  switch (family) {
#define FUSEDGAN_FAMILY(id, Formula) \
  case Family::id:                   \
    return run(Formula{});
#include "../families.def"
  }
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

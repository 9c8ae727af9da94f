// Scalar primitives (float, double) with the names the formulas use. The CPU's SIMD
// vector type provides the same names (csrc/cpu/simd.h), found by argument lookup, so
// each formula in this folder is written once and runs on scalars (CUDA, float64) and
// on vectors (CPU float32/float16/bfloat16).
#pragma once

#include <cmath>

#include "config.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

FUSEDGAN_HOST_DEVICE float exp(float x) { return ::expf(x); }
FUSEDGAN_HOST_DEVICE double exp(double x) { return ::exp(x); }
FUSEDGAN_HOST_DEVICE float log(float x) { return ::logf(x); }
FUSEDGAN_HOST_DEVICE double log(double x) { return ::log(x); }
FUSEDGAN_HOST_DEVICE float log1p(float x) { return ::log1pf(x); }
FUSEDGAN_HOST_DEVICE double log1p(double x) { return ::log1p(x); }
// Narrow-domain forms that the logistic formulas need; the CPU's vector versions exploit
// the domain (no overflow, no range reduction of the log) and cost about half as much.
// exp_minus(a) = e^-a for a >= 0; log1p_unit(z) = log(1 + z) for z in [0, 1].
FUSEDGAN_HOST_DEVICE float exp_minus(float a) { return ::expf(-a); }
FUSEDGAN_HOST_DEVICE double exp_minus(double a) { return ::exp(-a); }
FUSEDGAN_HOST_DEVICE float log1p_unit(float z) { return ::log1pf(z); }
FUSEDGAN_HOST_DEVICE double log1p_unit(double z) { return ::log1p(z); }
inline constexpr double kHalfLog2Pi = 0.91893853320467274178;  // log(2 pi) / 2

// log Gamma(x). On the host the reentrant forms: the plain ones write the global signgam,
// a data race when the CPU loops run on several threads.
#if defined(__CUDA_ARCH__)
FUSEDGAN_HOST_DEVICE float lgamma(float x) { return ::lgammaf(x); }
FUSEDGAN_HOST_DEVICE double lgamma(double x) { return ::lgamma(x); }
#else
inline float lgamma(float x) {
  int sign;
  return ::lgammaf_r(x, &sign);
}
inline double lgamma(double x) {
  int sign;
  return ::lgamma_r(x, &sign);
}
#endif


// The exponentially scaled modified Bessel functions of the first kind, i0e(x) = e^-|x| I_0(x)
// and i1e(x) = e^-|x| I_1(x) (von Mises' normalizer and its derivative). Up to |x| = 30 the
// power series, whose terms are all positive; beyond, the asymptotic series, whose terms fall
// below 1e-19 of the first before they would start to grow (at k = 2|x|).
struct ScaledBesselI {
  double i0e;
  double i1e;
};
FUSEDGAN_HOST_DEVICE ScaledBesselI scaled_bessel_i(double x) {
  const double a = ::fabs(x);
  const double sign = x < 0 ? -1.0 : 1.0;
  if (!(a <= 30)) {  // NaN too
    double t0 = 1, sum0 = 1, t1 = 1, sum1 = 1;
    for (int k = 1; k <= 25; ++k) {  // t_k = t_{k-1} ((2k - 1)^2 - 4 nu^2) / (8 k a) for nu = 0, 1
      const double odd_squared = double(2 * k - 1) * double(2 * k - 1);
      t0 *= odd_squared / (8 * k * a);
      t1 *= (odd_squared - 4) / (8 * k * a);
      sum0 += t0;
      sum1 += t1;
    }
    const double front = 1 / ::sqrt(2 * 3.14159265358979323846 * a);
    return {front * sum0, sign * front * sum1};
  }
  const double q = 0.25 * a * a;
  double t0 = 1, sum0 = 1, t1 = 0.5 * a, sum1 = 0.5 * a;  // q^k / k!^2 and (a/2) q^k / (k! (k + 1)!)
  for (int k = 1; k < 100 && t0 > 1e-17 * sum0; ++k) {
    t0 *= q / (double(k) * k);
    t1 *= q / (double(k) * (k + 1));
    sum0 += t0;
    sum1 += t1;
  }
  const double e = ::exp(-a);
  return {e * sum0, sign * e * sum1};
}
FUSEDGAN_HOST_DEVICE double i0e(double x) { return scaled_bessel_i(x).i0e; }
FUSEDGAN_HOST_DEVICE double i1e(double x) { return scaled_bessel_i(x).i1e; }
FUSEDGAN_HOST_DEVICE float i0e(float x) { return float(i0e(double(x))); }
FUSEDGAN_HOST_DEVICE float i1e(float x) { return float(i1e(double(x))); }

FUSEDGAN_HOST_DEVICE float sin(float x) { return ::sinf(x); }
FUSEDGAN_HOST_DEVICE double sin(double x) { return ::sin(x); }
FUSEDGAN_HOST_DEVICE float cos(float x) { return ::cosf(x); }
FUSEDGAN_HOST_DEVICE double cos(double x) { return ::cos(x); }

// sin x and cos x together: the CPU's vectors share one range reduction between them.
template <class V>
struct SinCos {
  V sin, cos;
};
FUSEDGAN_HOST_DEVICE SinCos<float> sin_cos(float x) { return {sin(x), cos(x)}; }
FUSEDGAN_HOST_DEVICE SinCos<double> sin_cos(double x) { return {sin(x), cos(x)}; }

FUSEDGAN_HOST_DEVICE float abs(float x) { return ::fabsf(x); }
FUSEDGAN_HOST_DEVICE double abs(double x) { return ::fabs(x); }

template <class T>
FUSEDGAN_HOST_DEVICE T select(bool condition, T if_true, T if_false) {
  return condition ? if_true : if_false;
}

FUSEDGAN_HOST_DEVICE bool is_nan(float x) { return x != x; }
FUSEDGAN_HOST_DEVICE bool is_nan(double x) { return x != x; }

FUSEDGAN_HOST_DEVICE bool any(bool condition) { return condition; }

// psi(x) = d/dx log Gamma(x) and psi'(x) for x > 0: the recurrences psi(x) = psi(x + 1) - 1/x
// and psi'(x) = psi'(x + 1) + 1/x^2 up to x >= 10, then the asymptotic series to the x^-16
// and x^-17 terms (the first omitted are below 1e-16 of the values there). The recurrences'
// sums of 1/y and 1/y^2 past the first step are kept as fractions, so that they cost two
// divisions rather than one a step (the first step divides: its y = x may be so small that
// y^2 underflows). 0 gives -inf and inf; x < 0 NaN (the fits and log-likelihoods need x > 0
// only). V is a double or the CPU's double vector.
template <class V>
struct Polygammas {
  V digamma, trigamma;
};

template <class V>
FUSEDGAN_HOST_DEVICE Polygammas<V> digamma_and_trigamma(V x) {
  const V given = x;
  const auto first_low = x < V(10.0);
  const V first_inverse = select(first_low, V(1.0) / x, V(0.0));
  x = select(first_low, x + V(1.0), x);
  V inverses(0.0), inverses_below(1.0), squares(0.0), squares_below(1.0);  // the later steps' sums, as fractions
  for (int step = 1; step < 10 && any(x < V(10.0)); ++step) {
    const auto low = x < V(10.0);
    const V y = select(low, x, V(1.0)), y2 = y * y;
    inverses = select(low, inverses * y + inverses_below, inverses);
    inverses_below = inverses_below * y;
    squares = select(low, squares * y2 + squares_below, squares);
    squares_below = squares_below * y2;
    x = select(low, x + V(1.0), x);
  }
  const V inverse = V(1.0) / x, f = inverse * inverse;
  // B_2k / (2k) and B_2k, the Bernoulli numbers' terms
  V digamma = log(x) - first_inverse - inverses / inverses_below - V(0.5) * inverse -
              f * (V(1.0 / 12) - f * (V(1.0 / 120) - f * (V(1.0 / 252) - f * (V(1.0 / 240) - f * (V(1.0 / 132) -
              f * (V(691.0 / 32760) - f * (V(1.0 / 12) - f * V(3617.0 / 8160))))))));
  V trigamma = first_inverse * first_inverse + squares / squares_below + inverse + V(0.5) * f +
               inverse * f * (V(1.0 / 6) - f * (V(1.0 / 30) - f * (V(1.0 / 42) - f * (V(1.0 / 30) - f * (V(5.0 / 66) -
               f * (V(691.0 / 2730) - f * (V(7.0 / 6) - f * V(3617.0 / 510))))))));
  const auto zero = given == V(0.0), negative = given < V(0.0);
  digamma = select(zero, V(-HUGE_VAL), select(negative, V(__builtin_nan("")), digamma));
  trigamma = select(zero, V(HUGE_VAL), select(negative, V(__builtin_nan("")), trigamma));
  return {digamma, trigamma};
}

FUSEDGAN_HOST_DEVICE double digamma(double x) { return digamma_and_trigamma(x).digamma; }
FUSEDGAN_HOST_DEVICE float digamma(float x) { return float(digamma(double(x))); }

// What a forward that also gives the input gradient returns per element.
template <class V>
struct ValueAndGrad {
  V value;
  V grad;
};
template <class R>
inline constexpr bool kGivesGrad = false;
template <class V>
inline constexpr bool kGivesGrad<ValueAndGrad<V>> = true;

// What an element gives to a reduction that takes two sums in one pass.
template <class V>
struct TwoSums {
  V first;
  V second;
};
template <class R>
inline constexpr bool kGivesTwoSums = false;
template <class V>
inline constexpr bool kGivesTwoSums<TwoSums<V>> = true;

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

// A double vector as wide as one register (8 lanes with AVX-512, 4 with AVX2, 2 otherwise),
// with the primitives that the formulas over data sets take (csrc/math/mixture.h,
// multivariate_normal.h, fits.h): arithmetic, comparisons, select, any, exp, log and log1p.
// exp and log are branch-free polynomials accurate to ~1 ulp, so float64 data sets are
// computed a vector of points at a time rather than one point at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "simd.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

inline constexpr int kDoubleLanes = kLanes / 2;

typedef double F64xR __attribute__((vector_size(8 * kDoubleLanes)));
typedef int64_t I64xR __attribute__((vector_size(8 * kDoubleLanes)));

// Lane-wise truth value: all bits set where true.
struct MaskD {
  I64xR bits;
};

FUSEDGAN_ALWAYS_INLINE MaskD operator&(MaskD a, MaskD b) { return {a.bits & b.bits}; }
FUSEDGAN_ALWAYS_INLINE MaskD operator|(MaskD a, MaskD b) { return {a.bits | b.bits}; }
FUSEDGAN_ALWAYS_INLINE bool any(MaskD m) {
  int64_t merged = 0;
  for (int i = 0; i < kDoubleLanes; ++i) merged |= m.bits[i];
  return merged != 0;
}

struct VecD {
  F64xR v;

  VecD() = default;
  VecD(double scalar) : v(F64xR{} + scalar) {}  // NOLINT: broadcasts like a scalar literal
  explicit VecD(F64xR lanes) : v(lanes) {}

  FUSEDGAN_ALWAYS_INLINE static VecD load(const double* p) {
    VecD r;
    memcpy(&r.v, p, sizeof r.v);
    return r;
  }
  FUSEDGAN_ALWAYS_INLINE void store(double* p) const { memcpy(p, &v, sizeof v); }
};

FUSEDGAN_ALWAYS_INLINE VecD operator+(VecD a, VecD b) { return VecD(a.v + b.v); }
FUSEDGAN_ALWAYS_INLINE VecD operator-(VecD a, VecD b) { return VecD(a.v - b.v); }
FUSEDGAN_ALWAYS_INLINE VecD operator*(VecD a, VecD b) { return VecD(a.v * b.v); }
FUSEDGAN_ALWAYS_INLINE VecD operator/(VecD a, VecD b) { return VecD(a.v / b.v); }
FUSEDGAN_ALWAYS_INLINE VecD operator-(VecD a) { return VecD(-a.v); }
FUSEDGAN_ALWAYS_INLINE MaskD operator<(VecD a, VecD b) { return {a.v < b.v}; }
FUSEDGAN_ALWAYS_INLINE MaskD operator<=(VecD a, VecD b) { return {a.v <= b.v}; }
FUSEDGAN_ALWAYS_INLINE MaskD operator>(VecD a, VecD b) { return {a.v > b.v}; }
FUSEDGAN_ALWAYS_INLINE MaskD operator>=(VecD a, VecD b) { return {a.v >= b.v}; }
FUSEDGAN_ALWAYS_INLINE MaskD operator==(VecD a, VecD b) { return {a.v == b.v}; }

FUSEDGAN_ALWAYS_INLINE I64xR bits_of(VecD a) { return reinterpret_cast<I64xR>(a.v); }
FUSEDGAN_ALWAYS_INLINE VecD from_bits(I64xR bits) { return VecD(reinterpret_cast<F64xR>(bits)); }
FUSEDGAN_ALWAYS_INLINE VecD select(MaskD m, VecD if_true, VecD if_false) { return VecD(m.bits ? if_true.v : if_false.v); }
FUSEDGAN_ALWAYS_INLINE MaskD is_nan(VecD a) { return {a.v != a.v}; }

// The lanes base[i * stride] for i < kDoubleLanes: one column of a block of short rows.
FUSEDGAN_ALWAYS_INLINE VecD gather(const double* base, int64_t stride) {
  I64xR offsets;
  for (int i = 0; i < kDoubleLanes; ++i) offsets[i] = i * stride;
#if defined(__AVX512F__)
  return VecD(reinterpret_cast<F64xR>(_mm512_i64gather_pd(reinterpret_cast<__m512i>(offsets), base, 8)));
#elif defined(__AVX2__)
  return VecD(reinterpret_cast<F64xR>(_mm256_i64gather_pd(base, reinterpret_cast<__m256i>(offsets), 8)));
#else
  VecD lanes;
  for (int i = 0; i < kDoubleLanes; ++i) lanes.v[i] = base[offsets[i]];
  return lanes;
#endif
}

// c[0] + c[1] x + ... + c[N-1] x^(N-1) by Estrin's scheme: pairs of terms, then pairs of pairs
// by x^2, x^4, ..., so that the chain of dependent multiply-adds is log2(N) long, not N (a
// point's few exps and logs are otherwise one latency-bound chain).
template <size_t N>
FUSEDGAN_ALWAYS_INLINE VecD polynomial(VecD x, const double (&c)[N]) {
  VecD terms[N];
  for (size_t i = 0; i < N; ++i) terms[i] = c[i];
  size_t count = N;
  for (VecD power = x; count > 1; power = power * power) {
    for (size_t i = 0; i < count / 2; ++i) terms[i] = terms[2 * i] + terms[2 * i + 1] * power;
    if (count % 2) terms[count / 2] = terms[count - 1];
    count = (count + 1) / 2;
  }
  return terms[0];
}

// ln 2 in two parts (Cody and Waite): the first ends in zero bits, so that n times it is exact
// for the exponents n of exp and log.
inline constexpr double kLn2High = 6.93147180369123816490e-01;
inline constexpr double kLn2Low = 1.90821492927058770002e-10;

// e^t = 2^n e^r with t = n ln2 + r, |r| <= ln2/2 (ln 2 in its two parts), then e^r by its
// Taylor series to r^13 (the first term left out is below 2^-56 of the sum). 2^n is applied as
// two factors so that neither leaves the normal range: +inf above ~709.78, subnormal below
// ~-708.4 and 0 below ~-745.1, NaN kept.
FUSEDGAN_ALWAYS_INLINE VecD exp(VecD t) {
  const VecD bounded = select(t > VecD(709.8), VecD(709.8), select(t < VecD(-746.0), VecD(-746.0), t));
  const double round_magic = 6755399441055744.0;  // 1.5 * 2^52: adding it rounds to an integer
  const VecD shifted = bounded * 1.4426950408889634 + round_magic;
  const VecD n = shifted - round_magic;
  const VecD r = (bounded - n * kLn2High) - n * kLn2Low;
  const VecD p = polynomial(r, {1.0, 1.0, 0.5, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                                1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0});
  const I64xR exponent = bits_of(shifted) - bits_of(VecD(round_magic));
  const I64xR half = exponent >> 1;
  const VecD result = p * from_bits((half + 1023) << 52) * from_bits((exponent - half + 1023) << 52);
  return select(is_nan(t), t, result);
}

// log(x + tail), for a tail below x's last digit (0, or what rounding x lost): x = m 2^e with
// m in [sqrt(1/2), sqrt(2)); log m = 2 atanh(s) by its series to s^23, with
// s = (m - 1 + t)/(m + 1 + t), t the tail scaled by 2^-e; e ln2 in its two parts.
FUSEDGAN_ALWAYS_INLINE VecD log_with_tail(VecD x, VecD tail) {
  const MaskD subnormal = x < VecD(2.2250738585072014e-308);
  const VecD normal = select(subnormal, x * 4503599627370496.0, x);  // * 2^52
  const I64xR bits = bits_of(normal);
  I64xR e = ((bits >> 52) & 0x7ff) - 1023 - (subnormal.bits & 52);
  VecD m = from_bits((bits & 0x000fffffffffffff) | 0x3ff0000000000000);  // [1, 2)
  const MaskD above_sqrt2 = m > VecD(1.4142135623730951);
  m = select(above_sqrt2, m * 0.5, m);
  e -= above_sqrt2.bits;  // the mask is -1 where true
  const I64xR scaled = e < -1022 ? I64xR{} - 1022 : e;  // 2^-e stays finite for subnormal x (whose tail is 0)
  const VecD t = tail * from_bits((1023 - scaled) << 52);  // 2^-e, 0 for e = 1023
  const VecD s = (m - 1.0 + t) / (m + 1.0 + t);
  const VecD w = s * s;
  const VecD p = polynomial(w, {1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11, 1.0 / 13, 1.0 / 15, 1.0 / 17, 1.0 / 19,
                                1.0 / 21, 1.0 / 23});
  const VecD exponent(__builtin_convertvector(e, F64xR));
  VecD result = exponent * kLn2High + (2.0 * s + (2.0 * s * w * p + exponent * kLn2Low));
  result = select(x == VecD(0.0), VecD(-double(kInf)), result);
  result = select(x < VecD(0.0), VecD(double(kNaN)), result);
  result = select(x == VecD(double(kInf)), x, result);
  return select(is_nan(x), x, result);
}

FUSEDGAN_ALWAYS_INLINE VecD log(VecD x) { return log_with_tail(x, VecD(0.0)); }

// log(1 + x) = log(u + (x - (u - 1))) with u = 1 + x rounded: the tail restores what rounding
// u lost, so tiny x keep full relative precision.
FUSEDGAN_ALWAYS_INLINE VecD log1p(VecD x) {
  const VecD u = x + 1.0;
  return select(x == VecD(double(kInf)), x, log_with_tail(u, x - (u - 1.0)));
}

// Per-lane double sums of a run of vectors, their lanes added in a fixed tree at the end
// (the same bits every time).
struct SumD {
  F64xR lanes{};

  // Adds the first `count` lanes of v.
  FUSEDGAN_ALWAYS_INLINE void add(VecD v, int count) {
    if (count < kDoubleLanes) {
      for (int i = count; i < kDoubleLanes; ++i) v.v[i] = 0.0;  // a set's last, partial run
    }
    lanes += v.v;
  }
  double total() const { return reduce_lanes(lanes, Add{}); }
};

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// A 16-lane float vector built on the compiler's vector extensions, with the primitive
// names the formulas in csrc/math use (exp, log, log1p, abs, select). The same source is
// compiled once per instruction set (AVX-512, AVX2+FMA, generic); exp and log are
// branch-free polynomials (Cephes' single-precision coefficients), accurate to ~2 ulp.
#pragma once

#include <cstdint>
#include <cstring>

#include "../math/config.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

typedef float F32x16 __attribute__((vector_size(64)));
typedef int32_t I32x16 __attribute__((vector_size(64)));
typedef double F64x16 __attribute__((vector_size(128)));

// Lane-wise truth value: all bits set where true.
struct Mask {
  I32x16 bits;
};

inline Mask operator&(Mask a, Mask b) { return {a.bits & b.bits}; }
inline Mask operator|(Mask a, Mask b) { return {a.bits | b.bits}; }
inline bool all(Mask m) {
  int32_t merged = -1;
  for (int i = 0; i < 16; ++i) merged &= m.bits[i];
  return merged != 0;
}

struct VecF {
  static constexpr int kLanes = 16;
  F32x16 v;

  VecF() = default;
  VecF(float scalar) : v(F32x16{} + scalar) {}  // NOLINT: broadcasts like a scalar literal
  explicit VecF(F32x16 lanes) : v(lanes) {}

  static VecF load(const float* p) {
    VecF r;
    memcpy(&r.v, p, sizeof r.v);
    return r;
  }
  void store(float* p) const { memcpy(p, &v, sizeof v); }
};

inline VecF operator+(VecF a, VecF b) { return VecF(a.v + b.v); }
inline VecF operator-(VecF a, VecF b) { return VecF(a.v - b.v); }
inline VecF operator*(VecF a, VecF b) { return VecF(a.v * b.v); }
inline VecF operator/(VecF a, VecF b) { return VecF(a.v / b.v); }
inline VecF operator-(VecF a) { return VecF(-a.v); }
inline Mask operator<(VecF a, VecF b) { return {a.v < b.v}; }
inline Mask operator<=(VecF a, VecF b) { return {a.v <= b.v}; }
inline Mask operator>(VecF a, VecF b) { return {a.v > b.v}; }
inline Mask operator>=(VecF a, VecF b) { return {a.v >= b.v}; }
inline Mask operator==(VecF a, VecF b) { return {a.v == b.v}; }

inline VecF select(Mask m, VecF if_true, VecF if_false) { return VecF(m.bits ? if_true.v : if_false.v); }
inline I32x16 bits_of(VecF a) { return reinterpret_cast<I32x16>(a.v); }
inline VecF from_bits(I32x16 bits) { return VecF(reinterpret_cast<F32x16>(bits)); }
inline VecF abs(VecF a) { return from_bits(bits_of(a) & 0x7fffffff); }
inline Mask is_nan(VecF a) { return {a.v != a.v}; }

inline constexpr float kInf = __builtin_inff();
inline constexpr float kNaN = __builtin_nanf("");

// e^x: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n applied in two
// halves so that results down to the subnormals and up to +inf come out right.
inline VecF exp(VecF x) {
  const VecF clamped = select(x < VecF(-104.0f), VecF(-104.0f), select(x > VecF(89.0f), VecF(89.0f), x));
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const VecF shifted = clamped * 1.44269504088896341f + round_magic;
  const VecF n = shifted - round_magic;
  const I32x16 n_int = bits_of(shifted) - bits_of(VecF(round_magic));
  const VecF r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
  VecF p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const I32x16 half_n = n_int >> 1;
  const VecF scale_a = from_bits((half_n + 127) << 23);
  const VecF scale_b = from_bits((n_int - half_n + 127) << 23);
  return select(is_nan(x), x, p * scale_a * scale_b);
}

// log x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = f - f^2/2 + f^3 P(f), f = m - 1.
inline VecF log(VecF x) {
  const Mask subnormal = x < VecF(1.17549435e-38f);
  const VecF normal = select(subnormal, x * 8388608.0f, x);  // * 2^23
  const I32x16 bits = bits_of(normal);
  I32x16 e = ((bits >> 23) & 0xff) - 127 - (subnormal.bits & 23);
  VecF m = from_bits((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  const Mask above_sqrt2 = m > VecF(1.41421356f);
  m = select(above_sqrt2, m * 0.5f, m);
  e -= above_sqrt2.bits;  // the mask is -1 where true
  const VecF f = m - 1.0f;
  const VecF exponent(__builtin_convertvector(e, F32x16));
  const VecF f2 = f * f;
  VecF y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * f2 + exponent * -2.12194440e-4f - 0.5f * f2;
  VecF result = f + y + exponent * 0.693359375f;
  result = select(x == VecF(0.0f), VecF(-kInf), result);
  result = select(x < VecF(0.0f), VecF(kNaN), result);
  result = select(x == VecF(kInf), x, result);
  return select(is_nan(x), x, result);
}

// log(1 + x) = log u + (x - (u - 1)) / u with u = 1 + x rounded: the second term restores
// what rounding u lost, so tiny x keep full relative precision.
inline VecF log1p(VecF x) {
  const VecF u = x + 1.0f;
  const VecF result = log(u) + (x - (u - 1.0f)) / u;
  return select(x == VecF(kInf), x, select(u == VecF(0.0f), VecF(-kInf), result));
}

// Per-lane double accumulator: sums stay exact enough that a float32 mean over millions of
// elements lands within an ulp of the float64 result.
struct SumF64 {
  F64x16 lanes{};

  // Adds the first `count` lanes of v.
  void add(VecF v, int count) {
    static const I32x16 lane_index = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const VecF kept = select(Mask{lane_index < count}, v, VecF(0.0f));
    lanes += __builtin_convertvector(kept.v, F64x16);
  }
  double total() const {
    double sum = 0;
    for (int i = 0; i < 16; ++i) sum += lanes[i];
    return sum;
  }
};

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

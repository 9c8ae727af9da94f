// A float vector as wide as one register, built on the compiler's vector extensions, with
// the primitive names the formulas in csrc/math use (exp_minus, log, log1p, abs, select, ...).
// The same source is compiled once per instruction set; exp_minus and log are branch-free
// polynomials (Cephes' single-precision coefficients), accurate to ~2 ulp.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "../math/config.h"
#include "../math/scalar.h"

namespace fusedgan::cpu {
inline namespace FUSEDGAN_ISA {

// One register of lanes: 16 with AVX-512, 8 with AVX2, 4 otherwise. (Measured on Zen 4,
// which splits 512-bit operations in two: the loops still ran 1.45x faster with 16 lanes
// than with 8, as each instruction carries more of the long exp/log dependency chains
// through the out-of-order window. Vectors wider than a register are worse: gcc lowers
// their comparisons to scalar code.)
#if defined(__AVX512F__)
inline constexpr int kLanes = 16;
#elif defined(__AVX2__)
inline constexpr int kLanes = 8;
#else
inline constexpr int kLanes = 4;
#endif

typedef float F32xN __attribute__((vector_size(4 * kLanes)));
typedef int32_t I32xN __attribute__((vector_size(4 * kLanes)));
typedef double F64xN __attribute__((vector_size(8 * kLanes)));

// Lane-wise truth value: all bits set where true.
struct Mask {
  I32xN bits;
};

FUSEDGAN_ALWAYS_INLINE Mask operator&(Mask a, Mask b) { return {a.bits & b.bits}; }
FUSEDGAN_ALWAYS_INLINE Mask operator|(Mask a, Mask b) { return {a.bits | b.bits}; }
FUSEDGAN_ALWAYS_INLINE bool all(Mask m) {
#if defined(__AVX512F__)
  return _mm512_cmpeq_epi32_mask(reinterpret_cast<__m512i>(m.bits), _mm512_setzero_si512()) == 0;
#elif defined(__AVX2__)
  return _mm256_movemask_ps(reinterpret_cast<__m256>(m.bits)) == (1 << kLanes) - 1;
#else
  int32_t merged = -1;
  for (int i = 0; i < kLanes; ++i) merged &= m.bits[i];
  return merged != 0;
#endif
}

struct VecF {
  F32xN v;

  VecF() = default;
  VecF(float scalar) : v(F32xN{} + scalar) {}  // NOLINT: broadcasts like a scalar literal
  explicit VecF(F32xN lanes) : v(lanes) {}

  FUSEDGAN_ALWAYS_INLINE static VecF load(const float* p) {
    VecF r;
    memcpy(&r.v, p, sizeof r.v);
    return r;
  }
  FUSEDGAN_ALWAYS_INLINE void store(float* p) const { memcpy(p, &v, sizeof v); }
  // p aligned to the vector's size: a store past the cache, which skips reading the line it
  // overwrites. Streamed stores are weakly ordered: end a run of them with end_streaming().
  FUSEDGAN_ALWAYS_INLINE void stream(float* p) const {
#if defined(__AVX512F__)
    _mm512_stream_ps(p, reinterpret_cast<__m512>(v));
#elif defined(__AVX2__)
    _mm256_stream_ps(p, reinterpret_cast<__m256>(v));
#elif defined(__SSE2__)
    _mm_stream_ps(p, reinterpret_cast<__m128>(v));
#else
    store(p);
#endif
  }
};

FUSEDGAN_ALWAYS_INLINE void end_streaming() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

FUSEDGAN_ALWAYS_INLINE VecF operator+(VecF a, VecF b) { return VecF(a.v + b.v); }
FUSEDGAN_ALWAYS_INLINE VecF operator-(VecF a, VecF b) { return VecF(a.v - b.v); }
FUSEDGAN_ALWAYS_INLINE VecF operator*(VecF a, VecF b) { return VecF(a.v * b.v); }
FUSEDGAN_ALWAYS_INLINE VecF operator/(VecF a, VecF b) { return VecF(a.v / b.v); }
FUSEDGAN_ALWAYS_INLINE VecF operator-(VecF a) { return VecF(-a.v); }
FUSEDGAN_ALWAYS_INLINE Mask operator<(VecF a, VecF b) { return {a.v < b.v}; }
FUSEDGAN_ALWAYS_INLINE Mask operator<=(VecF a, VecF b) { return {a.v <= b.v}; }
FUSEDGAN_ALWAYS_INLINE Mask operator>(VecF a, VecF b) { return {a.v > b.v}; }
FUSEDGAN_ALWAYS_INLINE Mask operator>=(VecF a, VecF b) { return {a.v >= b.v}; }
FUSEDGAN_ALWAYS_INLINE Mask operator==(VecF a, VecF b) { return {a.v == b.v}; }

FUSEDGAN_ALWAYS_INLINE I32xN bits_of(VecF a) { return reinterpret_cast<I32xN>(a.v); }
FUSEDGAN_ALWAYS_INLINE VecF from_bits(I32xN bits) { return VecF(reinterpret_cast<F32xN>(bits)); }
FUSEDGAN_ALWAYS_INLINE VecF select(Mask m, VecF if_true, VecF if_false) { return VecF(m.bits ? if_true.v : if_false.v); }
FUSEDGAN_ALWAYS_INLINE VecF abs(VecF a) { return from_bits(bits_of(a) & 0x7fffffff); }
FUSEDGAN_ALWAYS_INLINE Mask is_nan(VecF a) { return {a.v != a.v}; }

// 0, 1, ..., kLanes - 1.
FUSEDGAN_ALWAYS_INLINE I32xN lane_index() {
  alignas(64) static constexpr int32_t kIndex[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  I32xN index;
  memcpy(&index, kIndex, sizeof index);
  return index;
}

// The lanes base[offsets[i]].
FUSEDGAN_ALWAYS_INLINE VecF gather(const float* base, I32xN offsets) {
#if defined(__AVX512F__)
  return VecF(reinterpret_cast<F32xN>(_mm512_i32gather_ps(reinterpret_cast<__m512i>(offsets), base, 4)));
#elif defined(__AVX2__)
  return VecF(reinterpret_cast<F32xN>(_mm256_i32gather_ps(base, reinterpret_cast<__m256i>(offsets), 4)));
#else
  float lanes[kLanes];
  for (int i = 0; i < kLanes; ++i) lanes[i] = base[offsets[i]];
  return VecF::load(lanes);
#endif
}

// The lanes base[i * stride] for i < kLanes: one column of a block of short rows.
FUSEDGAN_ALWAYS_INLINE VecF gather(const float* base, int32_t stride) { return gather(base, lane_index() * stride); }

// Stores lane i into base[i * stride]: gather's reverse.
FUSEDGAN_ALWAYS_INLINE void scatter(float* base, int32_t stride, VecF v) {
#if defined(__AVX512F__)
  _mm512_i32scatter_ps(base, reinterpret_cast<__m512i>(lane_index() * stride), reinterpret_cast<__m512>(v.v), 4);
#else
  float lanes[kLanes];
  v.store(lanes);
  for (int i = 0; i < kLanes; ++i) base[i * stride] = lanes[i];
#endif
}

inline constexpr float kInf = __builtin_inff();
inline constexpr float kNaN = __builtin_nanf("");

// e^t = 2^n e^r with t = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial; t must be
// within [-104, 89] (or NaN). Returns e^r and n; exp_minus below applies 2^n.
struct ExpParts {
  VecF mantissa;
  I32xN exponent;
  VecF n;  // the exponent as a float
};
FUSEDGAN_ALWAYS_INLINE ExpParts exp_parts(VecF t) {
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const VecF shifted = t * 1.44269504088896341f + round_magic;
  const VecF n = shifted - round_magic;
  const VecF r = t - n * 0.693359375f + n * 2.12194440e-4f;
  VecF p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return {p * r * r + r + 1.0f, bits_of(shifted) - bits_of(VecF(round_magic)), n};
}

// e^t for any t: +inf above ~88.72, subnormal below ~-87.3 and 0 below ~-103.9, NaN kept. 2^n is
// applied as two factors so that neither leaves the normal range.
FUSEDGAN_ALWAYS_INLINE VecF exp(VecF t) {
#if defined(__AVX512F__)  // as exp_minus does: bounds by vminps/vmaxps (NaN kept), 2^n by vscalefps
  const __m512 bounded = _mm512_max_ps(_mm512_set1_ps(-104.0f),
                                       _mm512_min_ps(_mm512_set1_ps(88.8f), reinterpret_cast<__m512>(t.v)));
  const ExpParts e = exp_parts(VecF(reinterpret_cast<F32xN>(bounded)));
  return VecF(reinterpret_cast<F32xN>(
      _mm512_scalef_ps(reinterpret_cast<__m512>(e.mantissa.v), reinterpret_cast<__m512>(e.n.v))));
#else
  const VecF clamped = select(t > VecF(88.8f), VecF(88.8f), select(t < VecF(-104.0f), VecF(-104.0f), t));
  const ExpParts e = exp_parts(clamped);
  const I32xN half = e.exponent >> 1;
  return e.mantissa * from_bits((half + 127) << 23) * from_bits((e.exponent - half + 127) << 23);
#endif
}

// log x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log m = f - f^2/2 + f^3 P(f), f = m - 1.
FUSEDGAN_ALWAYS_INLINE VecF log(VecF x) {
  const Mask subnormal = x < VecF(1.17549435e-38f);
  const VecF normal = select(subnormal, x * 8388608.0f, x);  // * 2^23
  const I32xN bits = bits_of(normal);
  I32xN e = ((bits >> 23) & 0xff) - 127 - (subnormal.bits & 23);
  VecF m = from_bits((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  const Mask above_sqrt2 = m > VecF(1.41421356f);
  m = select(above_sqrt2, m * 0.5f, m);
  e -= above_sqrt2.bits;  // the mask is -1 where true
  const VecF f = m - 1.0f;
  const VecF exponent(__builtin_convertvector(e, F32xN));
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
FUSEDGAN_ALWAYS_INLINE VecF log1p(VecF x) {
  const VecF u = x + 1.0f;
  const VecF result = log(u) + (x - (u - 1.0f)) / u;
  return select(x == VecF(kInf), x, select(u == VecF(0.0f), VecF(-kInf), result));
}

// e^-a for a >= 0: no overflow guard needed. With AVX-512, 2^n is applied by vscalefps,
// which also rounds results below the smallest normal float (a > ~87.3) to subnormals, and
// the bound by vminps (NaN kept: min_ps(x, y) is y where either is NaN): two instructions
// where the other builds take five, and flush those results to 0.
FUSEDGAN_ALWAYS_INLINE VecF exp_minus(VecF a) {
#if defined(__AVX512F__)
  const __m512 bounded = _mm512_min_ps(_mm512_set1_ps(104.0f), reinterpret_cast<__m512>(a.v));
  const ExpParts e = exp_parts(-VecF(reinterpret_cast<F32xN>(bounded)));
  return VecF(reinterpret_cast<F32xN>(
      _mm512_scalef_ps(reinterpret_cast<__m512>(e.mantissa.v), reinterpret_cast<__m512>(e.n.v))));
#else
  const ExpParts e = exp_parts(-select(a > VecF(88.0f), VecF(88.0f), a));  // keeps NaN
  const I32xN biased = e.exponent + 127;
  return select(Mask{biased > 0}, e.mantissa * from_bits(biased << 23), VecF(0.0f));
#endif
}

// log(1 + z) for z in [0, 1]: with s = z / (2 + z) in [0, 1/3], log(1 + z) = 2 atanh(s)
// = 2s (1 + s^2/3 + s^4/5 + ...); seven terms reach float precision without any range
// reduction.
FUSEDGAN_ALWAYS_INLINE VecF log1p_unit(VecF z) {
  const VecF s = z / (z + 2.0f);
  const VecF w = s * s;
  VecF p = 1.0f / 13.0f;
  p = p * w + 1.0f / 11.0f;
  p = p * w + 1.0f / 9.0f;
  p = p * w + 1.0f / 7.0f;
  p = p * w + 1.0f / 5.0f;
  p = p * w + 1.0f / 3.0f;
  p = p * w + 1.0f;
  return 2.0f * s * p;
}

// A function lane by lane with its scalar version (csrc/math/scalar.h): the special functions'
// fallback where the vector forms below do not reach.
template <class ScalarFunction>
FUSEDGAN_ALWAYS_INLINE VecF per_lane(VecF v, const ScalarFunction& f) {
  float lanes[kLanes];
  v.store(lanes);
  for (int i = 0; i < kLanes; ++i) lanes[i] = f(lanes[i]);
  return VecF::load(lanes);
}

inline constexpr int kTabled = 1024;

// f(n) for n = 0 .. kTabled (f(0) unused), computed once.
template <class ScalarFunction>
const float* tabled(const ScalarFunction& f) {
  static const auto* table = [&] {
    auto* values = new float[kTabled + 1];
    values[0] = 0;
    for (int n = 1; n <= kTabled; ++n) values[n] = f(float(n));
    return values;
  }();
  return table;
}

// table[n] in every lane: with AVX-512 from two registers where every n < 32 (small counts,
// the common case), one permute rather than a gather's sixteen loads.
FUSEDGAN_ALWAYS_INLINE VecF lookup(const float* table, I32xN n) {
#if defined(__AVX512F__)
  if (all(Mask{n < 32})) {
    return VecF(reinterpret_cast<F32xN>(
        _mm512_permutex2var_ps(_mm512_loadu_ps(table), reinterpret_cast<__m512i>(n), _mm512_loadu_ps(table + 16))));
  }
#endif
  return gather(table, n);
}


// For x in (0, kStirlingBeyond]: x moved up to x + n >= 6 (n < 7), where the asymptotic series
// reach float precision, with the product x (x + 1) ... (x + n - 1) (lgamma) and the sum
// 1/x + ... + 1/(x + n - 1) (digamma) of the steps.
inline constexpr float kStirlingBeyond = 1e30f;
struct Shifted {
  VecF x;
  VecF product;
  VecF reciprocals;
};
FUSEDGAN_ALWAYS_INLINE Shifted shifted_up(VecF x) {
  Shifted s{x, VecF(1.0f), VecF(0.0f)};
  for (int step = 0; step < 6; ++step) {
    const Mask low = s.x < VecF(6.0f);
    s.product = select(low, s.product * s.x, s.product);
    s.reciprocals = select(low, s.reciprocals + VecF(1.0f) / s.x, s.reciprocals);
    s.x = select(low, s.x + VecF(1.0f), s.x);
  }
  return s;
}
FUSEDGAN_ALWAYS_INLINE Mask stirling_domain(VecF x) { return (x > VecF(0.0f)) & (x <= VecF(kStirlingBeyond)); }

// lgamma(y) = (y - 1/2) log y - y + log(2 pi)/2 + 1/(12 y) - 1/(360 y^3) + 1/(1260 y^5) for y >= 6.
FUSEDGAN_ALWAYS_INLINE VecF lgamma_stirling(VecF x) {
  const Shifted s = shifted_up(x);
  const VecF inv = VecF(1.0f) / s.x;
  const VecF inv2 = inv * inv;
  const VecF series = inv * (VecF(1.0f / 12) - inv2 * (VecF(1.0f / 360) - inv2 * VecF(1.0f / 1260)));
  return (s.x - VecF(0.5f)) * log(s.x) - s.x + VecF(float(math::kHalfLog2Pi)) + series - log(s.product);
}

// digamma(y) = log y - 1/(2y) - 1/(12 y^2) + 1/(120 y^4) - 1/(252 y^6) for y >= 6.
FUSEDGAN_ALWAYS_INLINE VecF digamma_asymptotic(VecF x) {
  const Shifted s = shifted_up(x);
  const VecF inv = VecF(1.0f) / s.x;
  const VecF inv2 = inv * inv;
  const VecF series = inv2 * (VecF(1.0f / 12) - inv2 * (VecF(1.0f / 120) - inv2 * VecF(1.0f / 252)));
  return log(s.x) - VecF(0.5f) * inv - series - s.reciprocals;
}

// Whole counts from the table; other positive, finite lanes by the series; poles, negative
// arguments, infinities and NaN lane by lane with the scalar functions.
template <class Vector, class ScalarFunction>
FUSEDGAN_ALWAYS_INLINE VecF special(VecF v, const float* table, const Vector& vector, const ScalarFunction& f) {
  const VecF clamped = select(v > VecF(float(kTabled)), VecF(float(kTabled)), select(v >= VecF(1.0f), v, VecF(1.0f)));
  const I32xN n = __builtin_convertvector(clamped.v, I32xN);  // truncated
  if (all(Mask{__builtin_convertvector(n, F32xN) == v.v})) return lookup(table, n);  // false for NaN, out of range
  return all(stirling_domain(v)) ? vector(v) : per_lane(v, f);
}

FUSEDGAN_ALWAYS_INLINE VecF lgamma(VecF v) {
  const auto f = [](float x) { return math::lgamma(x); };
  return special(v, tabled(f), lgamma_stirling, f);
}
FUSEDGAN_ALWAYS_INLINE VecF digamma(VecF v) {
  const auto f = [](float x) { return math::digamma(x); };
  return special(v, tabled(f), digamma_asymptotic, f);
}
FUSEDGAN_ALWAYS_INLINE VecF i0e(VecF v) {
  return per_lane(v, [](float x) { return math::i0e(x); });
}
FUSEDGAN_ALWAYS_INLINE VecF i1e(VecF v) {
  return per_lane(v, [](float x) { return math::i1e(x); });
}

// sin and cos through x = k pi/2 + r, |r| <= pi/4, with pi/2 in three parts (Cody and Waite) so
// that r keeps float precision while k pi/2's first parts are exact (|x| <= 8192); then
// Cephes' polynomials on [-pi/4, pi/4]. Larger, infinite and NaN lanes take the scalar functions.
struct Quadrant {
  VecF sin_r;
  VecF cos_r;
  I32xN k;
};
FUSEDGAN_ALWAYS_INLINE Quadrant quadrant(VecF x) {
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const VecF shifted = x * 0.636619772367581343f + round_magic;
  const VecF k = shifted - round_magic;
  const VecF r = ((x - k * 1.5703125f) - k * 4.837512969970703125e-4f) - k * 7.549789954891882e-8f;
  const VecF z = r * r;
  const VecF sin_r = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
  const VecF cos_r = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z - 0.5f * z + 1.0f;
  return {sin_r, cos_r, bits_of(shifted) - bits_of(VecF(round_magic))};
}
FUSEDGAN_ALWAYS_INLINE Mask reducible(VecF x) { return abs(x) <= VecF(8192.0f); }
// sin(k pi/2 + r) is, for k = 0, 1, 2, 3 (mod 4): sin r, cos r, -sin r, -cos r.
FUSEDGAN_ALWAYS_INLINE VecF quadrant_value(const Quadrant& q, I32xN k) {
  const VecF value = select(Mask{-(k & 1)}, q.cos_r, q.sin_r);
  return from_bits(bits_of(value) ^ ((k & 2) << 30));
}
FUSEDGAN_ALWAYS_INLINE VecF sin(VecF v) {
  if (!all(reducible(v))) return per_lane(v, [](float x) { return math::sin(x); });
  const Quadrant q = quadrant(v);
  return quadrant_value(q, q.k);
}
FUSEDGAN_ALWAYS_INLINE VecF cos(VecF v) {  // cos x = sin(x + pi/2): one quadrant on
  if (!all(reducible(v))) return per_lane(v, [](float x) { return math::cos(x); });
  const Quadrant q = quadrant(v);
  return quadrant_value(q, q.k + 1);
}
FUSEDGAN_ALWAYS_INLINE math::SinCos<VecF> sin_cos(VecF v) {
  if (!all(reducible(v))) return {sin(v), cos(v)};
  const Quadrant q = quadrant(v);
  return {quadrant_value(q, q.k), quadrant_value(q, q.k + 1)};
}

// combine() over a vector's lanes in a fixed tree (lane i with lane i + half, halving), so
// that the result is the same every time and the additions overlap rather than wait on one
// another.
template <class Lanes, class Combine>
FUSEDGAN_ALWAYS_INLINE auto reduce_lanes(const Lanes& v, const Combine& combine) {
  using Scalar = std::remove_cv_t<std::remove_reference_t<decltype(v[0])>>;
  constexpr int kCount = sizeof(Lanes) / sizeof(Scalar);
  Scalar lanes[kCount];
  for (int i = 0; i < kCount; ++i) lanes[i] = v[i];
  for (int half = kCount / 2; half > 0; half /= 2) {
    for (int i = 0; i < half; ++i) lanes[i] = combine(lanes[i], lanes[i + half]);
  }
  return lanes[0];
}

struct Add {
  template <class Scalar>
  FUSEDGAN_ALWAYS_INLINE Scalar operator()(Scalar a, Scalar b) const { return a + b; }
};

// Per-lane sums: blocks of up to 16 vectors are added in float, each block's sum then in
// double. The float part rounds at most 16 times per lane and block, so a float32 mean over
// millions of elements still lands within an ulp of the float64 result, and converting to
// double once per block instead of once per vector keeps the loop's cost in the math.
struct SumF64 {
  static constexpr int kBlock = 16;
  F64xN lanes{};
  F32xN block{};
  int pending = 0;

  // Adds the first `count` lanes of v.
  FUSEDGAN_ALWAYS_INLINE void add(VecF v, int count) {
    if (count < kLanes) v = select(Mask{lane_index() < count}, v, VecF(0.0f));  // a row's last, partial run
    block += v.v;
    if (++pending == kBlock) flush();
  }
  FUSEDGAN_ALWAYS_INLINE void flush() {
    lanes += __builtin_convertvector(block, F64xN);
    block = F32xN{};
    pending = 0;
  }
  double total() {
    flush();
    return reduce_lanes(lanes, Add{});
  }
};

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::cpu

// The element types a kernel reads and writes. 16-bit floats are converted to and from
// float with integer operations, so host and device give the same bits; the kernels
// compute in float (double for double) and store with round-to-nearest-even.
#pragma once

#include <cstdint>
#include <cstring>

#include "../kernel_args.h"
#include "config.h"

namespace fusedgan::math {
inline namespace FUSEDGAN_ISA {

struct Half {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

FUSEDGAN_HOST_DEVICE float float_from_bits(uint32_t bits) {
  float value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

FUSEDGAN_HOST_DEVICE uint32_t bits_of(float value) {
  uint32_t bits;
  memcpy(&bits, &value, sizeof bits);
  return bits;
}

FUSEDGAN_HOST_DEVICE float to_float(Half h) {
  const uint32_t sign = uint32_t(h.bits & 0x8000u) << 16;
  const uint32_t exponent = (h.bits >> 10) & 0x1fu;
  const uint32_t mantissa = h.bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = float(mantissa) * 5.9604644775390625e-8f;
    return float_from_bits(bits_of(magnitude) | sign);
  }
  if (exponent == 0x1f) {  // inf or NaN
    return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
  }
  return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

FUSEDGAN_HOST_DEVICE Half to_half(float value) {
  uint32_t bits = bits_of(value);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  bits &= 0x7fffffffu;
  uint32_t magnitude;
  if (bits >= 0x47800000u) {  // >= 2^16: inf, or NaN kept quiet
    magnitude = bits > 0x7f800000u ? 0x7e00u : 0x7c00u;
  } else if (bits < 0x38800000u) {  // below 2^-14: adding 0.5 rounds to a multiple of 2^-24
    magnitude = bits_of(float_from_bits(bits) + 0.5f) - 0x3f000000u;
  } else {  // rebias the exponent, round the mantissa to nearest even
    const uint32_t mantissa_odd = (bits >> 13) & 1u;
    magnitude = (bits + 0xc8000fffu + mantissa_odd) >> 13;
  }
  return Half{uint16_t(sign | magnitude)};
}

FUSEDGAN_HOST_DEVICE float to_float(BFloat16 b) { return float_from_bits(uint32_t(b.bits) << 16); }

FUSEDGAN_HOST_DEVICE BFloat16 to_bfloat16(float value) {
  const uint32_t bits = bits_of(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return BFloat16{uint16_t((bits >> 16) | 0x40u)};  // quiet NaN
  return BFloat16{uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16)};
}

// Storage type -> the type the formulas compute in, and back.
FUSEDGAN_HOST_DEVICE float widen(float v) { return v; }
FUSEDGAN_HOST_DEVICE double widen(double v) { return v; }
FUSEDGAN_HOST_DEVICE float widen(Half v) { return to_float(v); }
FUSEDGAN_HOST_DEVICE float widen(BFloat16 v) { return to_float(v); }

FUSEDGAN_HOST_DEVICE void narrow_into(float* out, float v) { *out = v; }
FUSEDGAN_HOST_DEVICE void narrow_into(double* out, double v) { *out = v; }
FUSEDGAN_HOST_DEVICE void narrow_into(Half* out, float v) { *out = to_half(v); }
FUSEDGAN_HOST_DEVICE void narrow_into(BFloat16* out, float v) { *out = to_bfloat16(v); }

// float for the 16- and 32-bit types, double for double.
template <class Storage>
using compute_t = decltype(widen(Storage{}));

// A per-row sum rounded to T, then times g in T's compute type: what a gradient kept from
// the forward (the sum at g = 1) becomes when autograd scales it by g, so that computing it
// in the backward gives the same bits.
template <class T>
FUSEDGAN_HOST_DEVICE void narrow_scaled_into(T* out, double sum, T g) {
  T rounded;
  narrow_into(&rounded, compute_t<T>(sum));
  narrow_into(out, widen(rounded) * widen(g));
}

// Calls fn with a value of the storage type named by dtype: fn(T{}) -> T is the element type.
template <class Fn>
decltype(auto) visit_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::Float16:
      return fn(Half{});
    case DType::BFloat16:
      return fn(BFloat16{});
    case DType::Float32:
      return fn(float{});
    case DType::Float64:
      break;
  }
  return fn(double{});
}

}  // namespace FUSEDGAN_ISA
}  // namespace fusedgan::math

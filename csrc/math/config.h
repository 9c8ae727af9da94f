// Shared by every translation unit of the kernels: host/device qualifiers and the
// instruction-set namespace.
#pragma once

// Formulas and the CPU loops' helpers are always inlined: gcc otherwise declines some of
// them in the larger instantiations, and a call per vector (its arguments and results
// passing through memory) costs more than the work.
#define FUSEDGAN_ALWAYS_INLINE inline __attribute__((always_inline))
#define FUSEDGAN_LAMBDA_ALWAYS_INLINE __attribute__((always_inline))

#if defined(__CUDACC__)
#define FUSEDGAN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FUSEDGAN_HOST_DEVICE FUSEDGAN_ALWAYS_INLINE
#endif

// The CPU kernels are compiled once per instruction set (avx512, avx2, generic). Every
// inline function lives in an inline namespace named after that set, so the linker can
// never merge an AVX-512 copy of a helper into the generic build.
#ifndef FUSEDGAN_ISA
#define FUSEDGAN_ISA generic
#endif

// The x86 SIMD preamble of the kernel files: on x86 the intrinsics, DG_X86 = 1 (the ISA paths
// exist) and the shared AVX-512 helpers; elsewhere nothing (the scalar paths only).
#pragma once

// Complete unrolling of a register-tile loop (rows, steps): GCC otherwise unrolls such loops
// after deciding where the accumulator arrays live, and keeps them on the stack.
#if defined(__GNUC__) && !defined(__clang__)
#define DG_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define DG_UNROLL _Pragma("unroll")
#else
#define DG_UNROLL
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DG_X86 1
#include "cpu/avx512_util.h"
#endif

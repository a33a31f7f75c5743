// The x86 SIMD preamble of the kernel files: on x86 the intrinsics, DG_X86 = 1 (the ISA paths
// exist) and the shared AVX-512 helpers; elsewhere nothing (the scalar paths only).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DG_X86 1
#include "cpu/avx512_util.h"
#endif

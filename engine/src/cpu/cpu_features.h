// Which instruction-set path the fast kernels take, and whether the fast kernels run at all.
//
// Chosen once at run time from cpuid (__builtin_cpu_supports); overridable for tests and
// benchmarks by environment variables read on first use, or by the setters below:
//   DIFFGEMMA_KERNELS=exact       (default) blocked SIMD kernels accumulating in fp64: the
//                                 accuracy class of the reference kernels (parity tests pass)
//   DIFFGEMMA_KERNELS=fast32      the same kernels accumulating in fp32 (about 2x the GEMM rate;
//                                 error vs exact about sqrt(K) * 2^-24 relative per dot product)
//   DIFFGEMMA_KERNELS=reference   the scalar fp64-accumulated reference kernels (issue 3)
//   DIFFGEMMA_ISA=scalar|avx2|avx512   cap the ISA of the fast kernels (never above the CPU's)
// Every ISA path computes each output with the same FMA chain (fp64 or fp32), so the paths give
// bit-identical results (tests/test_kernels.py checks it).
#pragma once

namespace dg {

enum class Isa { kScalar = 0, kAVX2 = 1, kAVX512 = 2 };

Isa detected_isa();        // the best path this CPU supports
Isa active_isa();          // the path the fast kernels take now
void set_isa(Isa isa);     // capped at detected_isa()
const char* isa_name(Isa isa);

enum class KernelMode { kReference = 0, kExact = 1, kFast32 = 2 };
KernelMode kernel_mode();
void set_kernel_mode(KernelMode mode);
const char* kernel_mode_name(KernelMode mode);

inline bool fast_kernels() { return kernel_mode() != KernelMode::kReference; }

enum class GemmPrecision { kF64Accumulate, kF32Accumulate };
inline GemmPrecision gemm_precision() {
  return kernel_mode() == KernelMode::kFast32 ? GemmPrecision::kF32Accumulate : GemmPrecision::kF64Accumulate;
}

}  // namespace dg

// Which instruction-set path the fast kernels take, and whether the fast kernels run at all.
//
// Chosen once at run time from cpuid (__builtin_cpu_supports); overridable for tests and
// benchmarks by environment variables read on first use, or by the setters below:
//   DIFFGEMMA_KERNELS=fast        (default) quantized weights x 8-bit quantized activations in
//                                 integer dot products (qgemm.h); float weights, attention and
//                                 the soft embedding in fp32-accumulating SIMD GEMMs; vectorised
//                                 exp/tanh. Error vs exact: the activations' 8-bit rounding
//   DIFFGEMMA_KERNELS=exact       float activations, blocked SIMD GEMMs accumulating in fp64 (the
//                                 accuracy class of the reference kernels; the parity tests use it)
//   DIFFGEMMA_KERNELS=reference   the scalar fp64-accumulated reference kernels (issue 3)
//   DIFFGEMMA_ISA=scalar|avx2|avx2vnni|avx512|avx512bf16   cap the ISA of the kernels (never
//                                 above the CPU's)
// Every ISA path computes each output with the same FMA chain (fp64 or fp32), so the paths give
// bit-identical results (tests/test_kernels.py checks it).
#pragma once

namespace dg {

// Ordered: each level has everything of the ones below it.
//   kAVX2      AVX2 + FMA + F16C (int8 dot products emulated with vpmaddubsw/vpmaddwd)
//   kAVX2VNNI  kAVX2 + AVX-VNNI (vpdpbusd on ymm)
//   kAVX512    AVX-512 F/BW/VL + AVX512-VNNI (a CPU with AVX-512 but no VNNI counts as kAVX2)
//   kAVX512BF16  kAVX512 + AVX512-BF16 (the fast path's soft embedding in bf16 dot products where
//              the vocabulary is not a multiple of 32; every other kernel is the kAVX512 one)
enum class Isa { kScalar = 0, kAVX2 = 1, kAVX2VNNI = 2, kAVX512 = 3, kAVX512BF16 = 4 };

Isa detected_isa();        // the best path this CPU supports
Isa active_isa();          // the path the fast kernels take now
void set_isa(Isa isa);     // capped at detected_isa()
const char* isa_name(Isa isa);

enum class KernelMode { kReference = 0, kExact = 1, kFast = 2 };
KernelMode kernel_mode();
void set_kernel_mode(KernelMode mode);
const char* kernel_mode_name(KernelMode mode);

// The blocked SIMD kernels (exact or fast), as opposed to the scalar reference bodies.
inline bool fast_kernels() { return kernel_mode() != KernelMode::kReference; }
// The fast path proper: 8-bit activations, fp32 accumulation, vectorised transcendentals.
inline bool fast_path() { return kernel_mode() == KernelMode::kFast; }

// Whether packed Q5_0 weights are read in place by the AVX-512 kernels of qgemm_direct.h (true)
// or widened once per 32-row panel for the staged kernels of qgemm.h (false); results are
// bit-identical either way. In place, every row tile decodes the five-bit codes again (two mask
// moves and two masked adds per 64 codes, on the two vector ports Intel cores run 512-bit work
// on); staged, one decode serves all rows. Default: in place on AMD CPUs (four vector pipes),
// staged on others (measured on a Xeon: the experts' layer 3 % faster, 256-row Q5_0 products 30 %;
// BENCHMARKS.md). DIFFGEMMA_Q5_0_DIRECT=0|1 overrides; set_q5_0_direct(-1) restores the default.
bool q5_0_direct();
void set_q5_0_direct(int v);  // 0, 1, or -1 (the default for this CPU)

// Parses "reference" / "exact" / "fast"; false for anything else.
bool parse_kernel_mode(const char* s, KernelMode* out);

enum class GemmPrecision { kF64Accumulate, kF32Accumulate };
inline GemmPrecision gemm_precision() {
  return kernel_mode() == KernelMode::kFast ? GemmPrecision::kF32Accumulate : GemmPrecision::kF64Accumulate;
}

}  // namespace dg

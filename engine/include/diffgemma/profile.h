// Phase timing of the forward passes (diffgemma-bench) and which kernels run.
//
// Off by default and then free: a pass checks one pointer per phase. On (Context::set_profiling),
// each phase's wall time is added to the context's PhaseTimes until reset_phase_times().
#pragma once

#include <cstdint>

namespace dg {

enum class Phase : int {
  kEmbed = 0,      // token embedding lookups (canvas or prompt)
  kSelfCondProbs,  // softmax(sc_logits) (steps >= 2 of a canvas)
  kSelfCondSoft,   // probs @ E (the soft embedding)
  kSelfCondMLP,    // self-conditioning pre-norm, gated MLP, add, norm
  kAttnProj,       // attention norms, Q/K/V/O projections, q/k/v norms, rope, residual add
  kAttnCore,       // scores, softmax, P @ V over cached prefix + new rows
  kDenseMLP,       // the dense (shared) MLP branch
  kMoERouter,      // router norm, projection, softmax, top-k
  kMoEExperts,     // expert gather, gate/up, GELU, down, weighted sum, post norms, layer scalar
  kLMHead,         // final norm, tied LM head, softcap
  kCount
};

const char* phase_name(Phase p);

struct PhaseTimes {
  double seconds[static_cast<int>(Phase::kCount)] = {};
  int64_t calls[static_cast<int>(Phase::kCount)] = {};
  // Inside kMoEExperts, the fast path's per-expert work, summed over threads (thread-seconds, so
  // divide by the thread count for a share of the phase's wall time): [0] the int8 GEMMs (gate,
  // up, down), [1] GELU x up and the 8-bit quantization of its rows.
  double expert_thread_seconds[2] = {};
  double& at(Phase p) { return seconds[static_cast<int>(p)]; }
  double at(Phase p) const { return seconds[static_cast<int>(p)]; }
};

// The kernel path in use ("fast", "exact" or "reference"; DIFFGEMMA_KERNELS, default fast) and
// the ISA the kernels take ("avx512", "avx2vnni", "avx2" or "scalar"; DIFFGEMMA_ISA caps it).
// Process-wide. The setters throw dg::Error for an unknown name; set_kernel_isa caps the value
// at what this CPU has.
const char* kernel_mode_string();
const char* kernel_isa_string();
void set_kernel_mode_string(const char* mode);
void set_kernel_isa_string(const char* isa);
// Packed Q5_0 weights read in place by the AVX-512 kernels (1) or widened per panel for the staged
// ones (0): the same results, a speed choice per CPU (DIFFGEMMA_Q5_0_DIRECT); -1 restores the
// CPU's default.
int q5_0_direct_mode();
void set_q5_0_direct_mode(int v);

}  // namespace dg

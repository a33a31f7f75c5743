#include "cpu/cpu_features.h"

#include "diffgemma/error.h"
#include "diffgemma/profile.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace dg {
namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
    return __builtin_cpu_supports("avx512bf16") ? Isa::kAVX512BF16 : Isa::kAVX512;
  if (avx2 && __builtin_cpu_supports("avxvnni")) return Isa::kAVX2VNNI;
  if (avx2) return Isa::kAVX2;
#endif
  return Isa::kScalar;
}

Isa from_env(Isa best) {
  const char* s = std::getenv("DIFFGEMMA_ISA");
  if (!s || !*s) return best;
  Isa want = best;
  if (!std::strcmp(s, "scalar")) want = Isa::kScalar;
  else if (!std::strcmp(s, "avx2")) want = Isa::kAVX2;
  else if (!std::strcmp(s, "avx2vnni")) want = Isa::kAVX2VNNI;
  else if (!std::strcmp(s, "avx512")) want = Isa::kAVX512;
  else if (!std::strcmp(s, "avx512bf16")) want = Isa::kAVX512BF16;
  return want < best ? want : best;
}

KernelMode mode_from_env() {
  KernelMode m = KernelMode::kFast;
  const char* s = std::getenv("DIFFGEMMA_KERNELS");
  if (s && *s) parse_kernel_mode(s, &m);  // an unknown value keeps the default
  return m;
}

std::atomic<int> g_isa{-1};
std::atomic<int> g_mode{-1};
std::atomic<int> g_q5_direct{-1};

int q5_0_direct_default() {
  const char* s = std::getenv("DIFFGEMMA_Q5_0_DIRECT");
  if (s && !std::strcmp(s, "0")) return 0;
  if (s && !std::strcmp(s, "1")) return 1;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") ? 1 : 0;
#else
  return 0;
#endif
}

}  // namespace

bool q5_0_direct() {
  int v = g_q5_direct.load(std::memory_order_relaxed);
  if (v < 0) {
    v = q5_0_direct_default();
    g_q5_direct.store(v, std::memory_order_relaxed);
  }
  return v == 1;
}

void set_q5_0_direct(int v) { g_q5_direct.store(v == 0 || v == 1 ? v : -1, std::memory_order_relaxed); }
int q5_0_direct_mode() { return q5_0_direct() ? 1 : 0; }
void set_q5_0_direct_mode(int v) { set_q5_0_direct(v); }

Isa detected_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(from_env(detected_isa()));
    g_isa.store(v, std::memory_order_relaxed);
  }
  return static_cast<Isa>(v);
}

void set_isa(Isa isa) {
  const Isa best = detected_isa();
  g_isa.store(static_cast<int>(isa < best ? isa : best), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAVX512BF16: return "avx512bf16";
    case Isa::kAVX512: return "avx512";
    case Isa::kAVX2VNNI: return "avx2vnni";
    case Isa::kAVX2: return "avx2";
    default: return "scalar";
  }
}

KernelMode kernel_mode() {
  int v = g_mode.load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(mode_from_env());
    g_mode.store(v, std::memory_order_relaxed);
  }
  return static_cast<KernelMode>(v);
}

void set_kernel_mode(KernelMode mode) { g_mode.store(static_cast<int>(mode), std::memory_order_relaxed); }

const char* kernel_mode_name(KernelMode mode) {
  switch (mode) {
    case KernelMode::kReference: return "reference";
    case KernelMode::kExact: return "exact";
    default: return "fast";
  }
}

bool parse_kernel_mode(const char* s, KernelMode* out) {
  if (!std::strcmp(s, "reference")) *out = KernelMode::kReference;
  else if (!std::strcmp(s, "exact")) *out = KernelMode::kExact;
  else if (!std::strcmp(s, "fast")) *out = KernelMode::kFast;
  else return false;
  return true;
}

const char* kernel_mode_string() { return kernel_mode_name(kernel_mode()); }
const char* kernel_isa_string() { return isa_name(active_isa()); }

void set_kernel_mode_string(const char* mode) {
  KernelMode m;
  if (!mode || !parse_kernel_mode(mode, &m))
    throw Error(std::string("unknown kernels '") + (mode ? mode : "") + "' (expected fast, exact or reference)");
  set_kernel_mode(m);
}

void set_kernel_isa_string(const char* isa) {
  const std::string s = isa ? isa : "";
  Isa want;
  if (s == "scalar") want = Isa::kScalar;
  else if (s == "avx2") want = Isa::kAVX2;
  else if (s == "avx2vnni") want = Isa::kAVX2VNNI;
  else if (s == "avx512") want = Isa::kAVX512;
  else if (s == "avx512bf16") want = Isa::kAVX512BF16;
  else if (s == "native") want = detected_isa();
  else throw Error("unknown ISA '" + s + "' (expected scalar, avx2, avx2vnni, avx512, avx512bf16 or native)");
  set_isa(want);
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kEmbed: return "embed";
    case Phase::kSelfCondProbs: return "self_cond_probs";
    case Phase::kSelfCondSoft: return "self_cond_soft_embed";
    case Phase::kSelfCondMLP: return "self_cond_mlp";
    case Phase::kAttnProj: return "attn_proj";
    case Phase::kAttnCore: return "attn_core";
    case Phase::kDenseMLP: return "dense_mlp";
    case Phase::kMoERouter: return "moe_router";
    case Phase::kMoEExperts: return "moe_experts";
    case Phase::kLMHead: return "lm_head";
    default: return "?";
  }
}

}  // namespace dg

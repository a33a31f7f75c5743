// diffgemma-expert-kernel: one thread's Q4_K expert GEMM (the engine's path: packed weights read in
// place on AVX512-VNNI, else panels decoded from the file's blocks) with the
// weights hot in L2 (one expert repeated) and cold (n experts in turn, streamed from memory),
// beside the core's int8-dot peak, alternated so the host's noise hits all three alike.
//   diffgemma-expert-kernel [OUT IN ROWS EXPERTS ROUNDS]   (default 704 2816 16 128 8: a gate)
// A developer tool (not installed): it links the engine's internal kernels.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/q8_acts.h"
#include "cpu/qgemm.h"
#include "cpu/qpack.h"
#include "model/weights.h"
#include "diffgemma/profile.h"
#include "peak_loops.h"
#include "util/thread_pool.h"

#if defined(__x86_64__)
static double int8_peak_once(dg::Isa isa) {  // one core, GOP/s, the instruction the int8 kernels use
  const int64_t n = 4000000;
  const auto t0 = std::chrono::steady_clock::now();
  volatile double keep = isa >= dg::Isa::kAVX512    ? dg_bench::dot_i8_avx512(n)
                         : isa == dg::Isa::kAVX2VNNI ? dg_bench::dot_i8_avxvnni(n)
                                                     : dg_bench::dot_i8_avx2(n);
  (void)keep;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 12.0 * (isa >= dg::Isa::kAVX512 ? 64 : 32) * 2 * n / s / 1e9;
}
#endif

int main(int argc, char** argv) {
  using namespace dg;
  const int64_t O = argc > 1 ? atoll(argv[1]) : 704, K = argc > 2 ? atoll(argv[2]) : 2816;
  const int64_t R = argc > 3 ? atoll(argv[3]) : 16, nE = argc > 4 ? atoll(argv[4]) : 128;
  const int rounds = argc > 5 ? atoi(argv[5]) : 8;
  if (O <= 0 || O % 32 || K <= 0 || K % 256 || R <= 0 || nE <= 0 || rounds <= 0) {
    std::fprintf(stderr, "error: OUT a multiple of 32, IN of 256, ROWS, EXPERTS and ROUNDS positive\n");
    return 2;
  }
  const bool simd = active_isa() >= Isa::kAVX2;
  const int64_t rb = K / 256 * 144;  // Q4_K: 144 bytes per 256 values
  std::vector<uint8_t> raw(static_cast<size_t>(nE * O * rb)), packed;  // [nE * O][rb] each
  std::mt19937 g(1);
  for (auto& v : raw) v = static_cast<uint8_t>(g());
  for (int64_t r = 0; r < nE * O; ++r)
    for (int64_t s = 0; s < K / 256; ++s) {  // finite fp16 d and dmin
      uint8_t* blk = raw.data() + r * rb + s * 144;
      const uint16_t d = 0x2000 + (g() & 0x3ff), m = 0x1c00 + (g() & 0x3ff);
      std::memcpy(blk, &d, 2), std::memcpy(blk + 2, &m, 2);
    }
  WeightView w;
  w.type = GGMLType::Q4_K, w.n_in = K, w.n_out = nE * O, w.row_bytes = rb, w.data = raw.data();
  if (weight_packing_enabled()) {  // as the engine loads them: packed where that pays (AVX512-VNNI)
    packed.resize(raw.size());
    qpack_panels(w, 0, nE * O / 32, packed.data());
    w.data = packed.data(), w.packed = true;
  }
  ThreadPool pool(1);
  std::vector<float> x(static_cast<size_t>(R * K)), y(static_cast<size_t>(R * O));  // [R, K], [R, O]
  std::normal_distribution<float> nd;
  for (auto& v : x) v = nd(g);
  QuantActsBuffer qb;
  qb.reserve(R, K);
  const QuantActs a = qb.quantize(pool, x.data(), K, R, K);
  const int64_t hot_reps = std::max<int64_t>(nE, 1);
  std::vector<double> hot, cold, peak;
  for (int it = 0; it < rounds + 1; ++it) {  // round 0 warms up
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t e = 0; e < hot_reps; ++e) qgemm(w.rows(0, O), 0, O, a, y.data(), O, false);
    const double th = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / hot_reps;
    t0 = std::chrono::steady_clock::now();
    for (int64_t e = 0; e < nE; ++e) qgemm(w.rows(e * O, O), 0, O, a, y.data(), O, false);
    const double tc = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / nE;
    double p = 0;
#if defined(__x86_64__)
    if (simd) p = int8_peak_once(active_isa());
#endif
    if (it == 0) continue;
    hot.push_back(th), cold.push_back(tc), peak.push_back(p);
  }
  auto med = [](std::vector<double> v) { std::sort(v.begin(), v.end()); return v[v.size() / 2]; };
  const double ops = 2.0 * O * K * R, mb = static_cast<double>(O * rb) / 1e6;
  const double h = med(hot), c = med(cold), p = med(peak);
  std::printf("Q4_K %lld x %lld, %lld rows, 1 thread, isa %s (%s), medians of %d rounds\n", static_cast<long long>(O),
              static_cast<long long>(K), static_cast<long long>(R), kernel_isa_string(),
              w.packed ? "packed" : "decoded panels", rounds);
  std::printf("  hot  (1 expert, %.2f MB, in L2)   %8.3f ms  %7.1f GOP/s", mb, h * 1e3, ops / h / 1e9);
  if (p > 0) std::printf("  %5.1f %% of peak", 100 * ops / h / 1e9 / p);
  std::printf("\n  cold (%lld experts from memory)    %8.3f ms  %7.1f GOP/s", static_cast<long long>(nE), c * 1e3,
              ops / c / 1e9);
  if (p > 0) std::printf("  %5.1f %% of peak", 100 * ops / c / 1e9 / p);
  std::printf("\n  cold - hot: %.3f ms per expert, i.e. its %.2f MB at %.1f GB/s not overlapped\n", (c - h) * 1e3, mb,
              c > h ? mb / 1e3 / (c - h) : 0.0);
  if (p > 0) std::printf("  int8-dot peak of this core: %.1f GOP/s\n", p);
  return 0;
}

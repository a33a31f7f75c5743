// diffgemma-bench: how fast the CPU forward pass is on a model, and how far from the machine's
// limits (issue 7).
//
//   diffgemma-bench -m model.gguf [-t threads] [--runs 5] [--warmup 1] [--prefix 64]
//                   [--prompt-lengths 128,512] [--kernels fast|exact|reference] [--json]
//
// Measures, each as the median of --runs runs after --warmup runs:
//   - the machine's peaks on the same threads: fp32 FMA, fp64 FMA, int8 dot (the instruction the int8
//     kernels use: AVX512-VNNI, AVX-VNNI or AVX2's vpmaddubsw) and bf16 dot;
//   - prefill (the causal encoder pass) in tokens/s at each prompt length;
//   - one denoising step of fixed work (a full canvas over a cached prefix of --prefix tokens, with
//     self-conditioning from the previous step's logits) split into phases (diffgemma/profile.h)
//     plus the vocabulary pass (temperature, softmax, entropy, argmax and one sample per row),
//     each with its FLOPs and achieved GFLOP/s against the peaks;
//   - the commit pass (re-encoding the committed canvas);
// and extrapolates the step to the real model's 30 layers: fixed part + 30 x (layer time / layers).
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "diffgemma/context.h"
#include "diffgemma/generate.h"
#include "diffgemma/error.h"
#include "diffgemma/model.h"
#include "diffgemma/profile.h"
#include "peak_loops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DG_X86 1
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------------------------
// Peak microbenchmarks: 12 independent accumulator chains per thread (enough to cover the FMA
// latency on two ports), all threads at once; operations counted as 2 per multiply-add.

constexpr int64_t kPeakIters = 20'000'000;

#ifdef DG_X86
using namespace dg_bench;  // the peak loops
#endif

// Peak resident set of this process (getrusage: KiB on Linux).
uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

struct Peaks {
  std::string isa = "scalar";
  double fp32 = 0, fp64 = 0, int8 = 0, bf16 = 0;  // G(FL)OP/s on all threads; 0: not measurable
};

// Runs fn(iters) on n threads at once; returns total ops/s given ops per iteration per thread.
template <class Fn>
double run_peak(int n_threads, double ops_per_iter, Fn fn) {
  const int64_t iters = kPeakIters / 4;
  fn(iters / 20);  // warm the core clocks
  std::vector<std::thread> th;
  std::vector<double> sink(static_cast<size_t>(n_threads));
  const auto t0 = Clock::now();
  for (int i = 0; i < n_threads; ++i) th.emplace_back([&, i] { sink[static_cast<size_t>(i)] = fn(iters); });
  for (auto& t : th) t.join();
  const double s = seconds_since(t0);
  volatile double keep = sink[0];
  (void)keep;
  return ops_per_iter * static_cast<double>(iters) * n_threads / s / 1e9;
}

Peaks measure_peaks_once(int n_threads) {
  Peaks p;
#ifdef DG_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    p.isa = "avx512";
    p.fp32 = run_peak(n_threads, 12.0 * 16 * 2, fma_f32_avx512);
    p.fp64 = run_peak(n_threads, 12.0 * 8 * 2, fma_f64_avx512);
    if (__builtin_cpu_supports("avx512vnni")) p.int8 = run_peak(n_threads, 12.0 * 64 * 2, dot_i8_avx512);
    if (__builtin_cpu_supports("avx512bf16")) p.bf16 = run_peak(n_threads, 12.0 * 32 * 2, dot_bf16_avx512);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    p.isa = "avx2";
    p.fp32 = run_peak(n_threads, 12.0 * 8 * 2, fma_f32_avx2);
    p.fp64 = run_peak(n_threads, 12.0 * 4 * 2, fma_f64_avx2);
  }
  // Without AVX512-VNNI the int8 kernels use AVX-VNNI on ymm, else vpmaddubsw (qgemm.cpp).
  if (p.int8 == 0 && __builtin_cpu_supports("avx2")) {
    if (__builtin_cpu_supports("avxvnni")) p.int8 = run_peak(n_threads, 12.0 * 32 * 2, dot_i8_avxvnni);
    else p.int8 = run_peak(n_threads, 12.0 * 32 * 2, dot_i8_avx2);
  }
#endif
  return p;
}

// The machine's peaks: the best of several short trials, since a shared host's neighbours take
// cycles in bursts (a single trial can read half the machine). With `prior`, the best of both.
Peaks measure_peaks(int n_threads, const Peaks* prior = nullptr) {
  constexpr int kTrials = 3;
  Peaks best = prior ? *prior : Peaks{};
  for (int i = 0; i < kTrials; ++i) {
    const Peaks p = measure_peaks_once(n_threads);
    best.isa = p.isa;
    best.fp32 = std::max(best.fp32, p.fp32);
    best.fp64 = std::max(best.fp64, p.fp64);
    best.int8 = std::max(best.int8, p.int8);
    best.bf16 = std::max(best.bf16, p.bf16);
  }
  return best;
}

// ---------------------------------------------------------------------------------------------

struct Options {
  std::string model;
  int threads = 0;
  int runs = 5;
  int warmup = 1;
  int64_t prefix = 64;
  std::vector<int64_t> prompt_lengths = {128, 512};
  std::string kernels;
  int64_t sc_top_k = 0;
  bool json = false;
  bool no_peaks = false;
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: diffgemma-bench -m MODEL [options]\n"
               "  -m, --model FILE        model (GGUF)\n"
               "  -t, --threads N         threads (default: one per physical core)\n"
               "      --runs N            timed runs per measurement (default 5; the median is reported)\n"
               "      --warmup N          untimed runs first (default 1)\n"
               "      --prefix N          cached prompt tokens before the canvas (default 64)\n"
               "      --prompt-lengths L  prefill lengths, comma-separated (default 128,512; 0: skip)\n"
               "      --kernels K         fast (default) | exact | reference (overrides DIFFGEMMA_KERNELS)\n"
               "      --sc-top-k N        the opt-in top-N self-conditioning (0: exact, the default)\n"
               "      --no-peaks          skip the peak microbenchmarks (best of 3 trials before and 3 after the runs)\n"
               "      --json              one JSON object on stdout instead of the table\n");
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        usage(2);
      }
      return argv[++i];
    };
    auto num = [&](const std::string& s) -> int64_t {
      char* end = nullptr;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (s.empty() || *end || v < 0) {
        std::fprintf(stderr, "error: %s: not a non-negative integer: %s\n", a.c_str(), s.c_str());
        usage(2);
      }
      return v;
    };
    if (a == "-m" || a == "--model") o.model = next();
    else if (a == "-t" || a == "--threads") o.threads = static_cast<int>(num(next()));
    else if (a == "--runs") o.runs = std::max<int>(1, static_cast<int>(num(next())));
    else if (a == "--warmup") o.warmup = static_cast<int>(num(next()));
    else if (a == "--prefix") o.prefix = num(next());
    else if (a == "--prompt-lengths") {
      o.prompt_lengths.clear();
      std::string s = next();
      size_t p = 0;
      while (p <= s.size()) {
        const size_t q = std::min(s.find(',', p), s.size());
        const int64_t v = num(s.substr(p, q - p));
        if (v > 0) o.prompt_lengths.push_back(v);
        p = q + 1;
      }
    } else if (a == "--kernels") o.kernels = next();
    else if (a == "--sc-top-k") o.sc_top_k = num(next());
    else if (a == "--json") o.json = true;
    else if (a == "--no-peaks") o.no_peaks = true;
    else if (a == "-h" || a == "--help") usage(0);
    else {
      std::fprintf(stderr, "error: unknown option %s\n", a.c_str());
      usage(2);
    }
  }
  if (o.model.empty()) {
    std::fprintf(stderr, "error: no model (-m FILE)\n");
    usage(2);
  }
  if (!o.kernels.empty() && o.kernels != "fast" && o.kernels != "exact" && o.kernels != "reference") {
    std::fprintf(stderr, "error: --kernels must be fast, exact or reference\n");
    usage(2);
  }
  return o;
}

struct PhaseRow {
  std::string name;
  double ms = 0, gflop = 0;
  bool per_layer = false;
};

int run(const Options& o) {
  if (!o.kernels.empty()) dg::set_kernel_mode_string(o.kernels.c_str());
  const auto load_start = std::chrono::steady_clock::now();
  auto model = dg::Model::load(o.model, o.threads);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - load_start).count();
  const dg::ModelHParams& hp = model->hparams();
  const int n_threads = model->n_threads();
  Peaks peaks = o.no_peaks ? Peaks{} : measure_peaks(n_threads);  // and again after the runs
  struct stat st {};
  const uint64_t file_bytes = stat(o.model.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;

  const int64_t C = hp.canvas_length, V = hp.n_vocab, H = hp.n_embd;
  int64_t longest = 0;
  for (int64_t L : o.prompt_lengths) longest = std::max(longest, L);
  dg::ContextParams cp;
  cp.n_ctx = std::max(longest, o.prefix + C) + 1;
  cp.n_batch = std::max<int64_t>(C, 512);
  cp.sc_top_k = o.sc_top_k;
  dg::Context ctx(model, cp);

  std::mt19937 rng(1234);
  auto random_ids = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n));
    std::uniform_int_distribution<int32_t> d(5, static_cast<int32_t>(V - 1));
    for (auto& id : ids) id = d(rng);
    return ids;
  };

  // Prefill.
  struct Prefill {
    int64_t tokens;
    double ms;
  };
  std::vector<Prefill> prefill;
  for (int64_t L : o.prompt_lengths) {
    const auto ids = random_ids(L);
    std::vector<double> t;
    for (int r = 0; r < o.warmup + o.runs; ++r) {
      ctx.clear();
      const auto t0 = Clock::now();
      ctx.encode(ids.data(), L);
      if (r >= o.warmup) t.push_back(seconds_since(t0));
    }
    prefill.push_back({L, 1e3 * median(t)});
  }

  // One denoising step: canvas over the cached prefix, self-conditioned on previous logits.
  const auto prompt = random_ids(o.prefix);
  const auto canvas = random_ids(C);
  std::vector<float> logits(static_cast<size_t>(C * V)), sc(static_cast<size_t>(C * V));  // [C, V] each
  ctx.clear();
  if (o.prefix > 0) ctx.encode(prompt.data(), o.prefix);
  ctx.denoise(canvas.data(), C, nullptr, sc.data());  // step 1 of the canvas: its logits feed SC
  std::vector<int32_t> argmax(static_cast<size_t>(C)), sample(static_cast<size_t>(C));
  std::vector<float> entropy(static_cast<size_t>(C)), sample_scratch;
  const int n_ph = static_cast<int>(dg::Phase::kCount);
  std::vector<std::vector<double>> ph(static_cast<size_t>(n_ph));
  std::vector<double> step_t, vocab_t, commit_t, xgemm_t, xgelu_t;  // xgemm/xgelu: thread-s / threads
  ctx.set_profiling(true);
  for (int r = 0; r < o.warmup + o.runs; ++r) {
    ctx.reset_phase_times();
    auto t0 = Clock::now();
    ctx.denoise(canvas.data(), C, sc.data(), logits.data());
    const double step = seconds_since(t0);
    t0 = Clock::now();
    // What generate() does with the logits of a step: the per-position sampling, then the
    // scaled logits made the next step's self-conditioning input.
    dg::sample_positions(*model, logits.data(), C, 0.8f, 1, 0, r, argmax.data(), sample.data(), entropy.data(),
                         sample_scratch);
    dg::self_conditioning_input(*model, logits.data(), C);
    const double voc = seconds_since(t0);
    if (r < o.warmup) continue;
    step_t.push_back(step);
    vocab_t.push_back(voc);
    for (int p = 0; p < n_ph; ++p) ph[static_cast<size_t>(p)].push_back(ctx.phase_times().seconds[p]);
    xgemm_t.push_back(ctx.phase_times().expert_thread_seconds[0] / n_threads);
    xgelu_t.push_back(ctx.phase_times().expert_thread_seconds[1] / n_threads);
  }
  // Commit pass (cache rebuilt to the prefix before each run).
  for (int r = 0; r < o.warmup + o.runs; ++r) {
    ctx.clear();
    if (o.prefix > 0) ctx.encode(prompt.data(), o.prefix);
    const auto t0 = Clock::now();
    ctx.commit(canvas.data(), C);
    if (r >= o.warmup) commit_t.push_back(seconds_since(t0));
  }
  ctx.set_profiling(false);

  // FLOPs of the step (2 per multiply-add), from the shapes.
  double f_attn_proj = 0, f_attn_core = 0;
  ctx.clear();
  if (o.prefix > 0) ctx.encode(prompt.data(), o.prefix);
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    const int64_t hd = hp.head_dim(il), nkv = hp.n_kv_head[static_cast<size_t>(il)];
    const int64_t qw = hp.n_head * hd, kw = nkv * hd;
    const bool has_v = hp.is_sliding[static_cast<size_t>(il)];
    f_attn_proj += 2.0 * C * H * (qw + kw * (has_v ? 2 : 1)) + 2.0 * C * qw * H;
    f_attn_core += 4.0 * C * hp.n_head * hd * static_cast<double>(ctx.kv_len(il) + C);
  }
  const double f_dense = 2.0 * C * 3 * H * hp.n_ff * hp.n_layer;
  const double f_router = 2.0 * C * H * hp.n_expert * hp.n_layer;
  const double f_experts = 2.0 * C * hp.n_expert_used * 3 * H * hp.n_ff_exp * hp.n_layer;
  const double f_lm = 2.0 * C * H * V, f_sc_soft = 2.0 * C * V * H, f_sc_mlp = 2.0 * C * 3 * H * hp.n_ff;

  auto med_ms = [&](dg::Phase p) { return 1e3 * median(ph[static_cast<size_t>(p)]); };
  std::vector<PhaseRow> rows = {
      {"embed", med_ms(dg::Phase::kEmbed), 0, false},
      {"self_cond_probs", med_ms(dg::Phase::kSelfCondProbs), 0, false},
      {"self_cond_soft_embed", med_ms(dg::Phase::kSelfCondSoft), f_sc_soft / 1e9, false},
      {"self_cond_mlp", med_ms(dg::Phase::kSelfCondMLP), f_sc_mlp / 1e9, false},
      {"attn_proj", med_ms(dg::Phase::kAttnProj), f_attn_proj / 1e9, true},
      {"attn_core", med_ms(dg::Phase::kAttnCore), f_attn_core / 1e9, true},
      {"dense_mlp", med_ms(dg::Phase::kDenseMLP), f_dense / 1e9, true},
      {"moe_router", med_ms(dg::Phase::kMoERouter), f_router / 1e9, true},
      {"moe_experts", med_ms(dg::Phase::kMoEExperts), f_experts / 1e9, true},
      {"lm_head", med_ms(dg::Phase::kLMHead), f_lm / 1e9, false},
      {"vocab_softmax_entropy_sample", 1e3 * median(vocab_t), 0, false},
  };
  // Inside moe_experts (fast path): its int8 GEMMs alone, GELU x up with the requantization, and
  // the rest (gather, combine, norms, threads waiting at the end), from per-thread laps divided by
  // the thread count. Not added to the step: moe_experts holds them.
  const double xgemm_ms = 1e3 * median(xgemm_t), xgelu_ms = 1e3 * median(xgelu_t);
  const std::vector<PhaseRow> expert_rows = {
      {"  int8 GEMMs (gate, up, down)", xgemm_ms, f_experts / 1e9, true},
      {"  GELU x up, requantize", xgelu_ms, 0, true},
      {"  rest (gather, combine, waits)", med_ms(dg::Phase::kMoEExperts) - xgemm_ms - xgelu_ms, 0, true},
  };
  double layers_ms = 0, fixed_ms = 0;
  for (const auto& r : rows) (r.per_layer ? layers_ms : fixed_ms) += r.ms;
  const double step_ms = 1e3 * median(step_t) + rows.back().ms;
  const double per_layer_ms = layers_ms / static_cast<double>(hp.n_layer);
  const double other_ms = step_ms - layers_ms - fixed_ms;  // unattributed (thread wake-ups, copies)
  const double step30_ms = fixed_ms + other_ms + 30.0 * per_layer_ms;
  const double commit_ms = 1e3 * median(commit_t);
  if (!o.no_peaks) peaks = measure_peaks(n_threads, &peaks);

  if (o.json) {
    std::printf("{\"model\":\"%s\",\"layers\":%lld,\"weight_type\":\"%s\",\"threads\":%d,\"kernels\":\"%s\",\"isa\":\"%s\",",
                o.model.c_str(), static_cast<long long>(hp.n_layer), model->weight_type_name().c_str(), n_threads,
                dg::kernel_mode_string(), dg::kernel_isa_string());
    std::printf("\"q5_0_direct\":%d,", dg::q5_0_direct_mode());
    std::printf("\"canvas\":%lld,\"prefix\":%lld,\"runs\":%d,\"warmup\":%d,", static_cast<long long>(C),
                static_cast<long long>(o.prefix), o.runs, o.warmup);
    std::printf("\"peaks_gflops\":{\"isa\":\"%s\",\"fp32_fma\":%.1f,\"fp64_fma\":%.1f,\"int8_dot\":%.1f,\"bf16_dot\":%.1f},",
                peaks.isa.c_str(), peaks.fp32, peaks.fp64, peaks.int8, peaks.bf16);
    std::printf("\"file_bytes\":%llu,\"peak_rss_bytes\":%llu,", static_cast<unsigned long long>(file_bytes),
                static_cast<unsigned long long>(peak_rss_bytes()));
    std::printf("\"load_ms\":%.1f,\"packed_bytes\":%llu,", load_ms,
                static_cast<unsigned long long>(model->packed_bytes()));
    std::printf("\"prefill\":[");
    for (size_t i = 0; i < prefill.size(); ++i)
      std::printf("%s{\"tokens\":%lld,\"ms\":%.2f,\"tokens_per_s\":%.2f}", i ? "," : "",
                  static_cast<long long>(prefill[i].tokens), prefill[i].ms, prefill[i].tokens * 1e3 / prefill[i].ms);
    std::printf("],\"step\":{\"total_ms\":%.2f,\"per_layer_ms\":%.2f,\"fixed_ms\":%.2f,\"unattributed_ms\":%.2f,"
                "\"extrapolated_30_layers_ms\":%.2f,\"phases\":{",
                step_ms, per_layer_ms, fixed_ms, other_ms, step30_ms);
    for (size_t i = 0; i < rows.size(); ++i)
      std::printf("%s\"%s\":{\"ms\":%.3f,\"gflop\":%.3f,\"gflops\":%.2f,\"per_layer\":%s}", i ? "," : "",
                  rows[i].name.c_str(), rows[i].ms, rows[i].gflop, rows[i].ms > 0 ? rows[i].gflop / rows[i].ms * 1e3 : 0.0,
                  rows[i].per_layer ? "true" : "false");
    std::printf("},\"moe_experts_split\":{\"gemm_ms\":%.3f,\"gemm_gflops\":%.2f,\"gelu_requant_ms\":%.3f,"
                "\"rest_ms\":%.3f}", xgemm_ms, xgemm_ms > 0 ? f_experts / 1e6 / xgemm_ms : 0.0, xgelu_ms,
                expert_rows[2].ms);
    std::printf("},\"commit_ms\":%.2f}\n", commit_ms);
    return 0;
  }

  std::printf("model      %s: %lld layers, %s, vocab %lld, canvas %lld\n", o.model.c_str(),
              static_cast<long long>(hp.n_layer), model->weight_type_name().c_str(), static_cast<long long>(V),
              static_cast<long long>(C));
  std::printf("load       %.1f s, %.2f GB of weights packed for the int8 kernels\n", load_ms / 1e3,
              static_cast<double>(model->packed_bytes()) / 1e9);
  std::printf("threads    %d, kernels %s (%s; packed Q5_0 %s), median of %d runs after %d warm-up%s\n", n_threads,
              dg::kernel_mode_string(), dg::kernel_isa_string(), dg::q5_0_direct_mode() ? "in place" : "staged", o.runs,
              o.warmup,
              o.sc_top_k > 0 ? (", self-conditioning top-" + std::to_string(o.sc_top_k)).c_str() : "");
  if (!o.no_peaks)
    std::printf("peaks      %s (best of 6 trials, before and after the runs): fp32 FMA %.1f GFLOP/s, fp64 FMA %.1f GFLOP/s, int8 dot %.1f GOP/s, bf16 dot %.1f GFLOP/s\n",
                peaks.isa.c_str(), peaks.fp32, peaks.fp64, peaks.int8, peaks.bf16);
  std::printf("\nprefill\n");
  for (const auto& p : prefill)
    std::printf("  %6lld tokens  %10.1f ms  %8.2f tokens/s\n", static_cast<long long>(p.tokens), p.ms,
                p.tokens * 1e3 / p.ms);
  std::printf("\ndenoising step (canvas %lld over a %lld-token prefix, self-conditioned)\n", static_cast<long long>(C),
              static_cast<long long>(o.prefix));
  std::printf("  %-30s %10s %6s %9s %9s %7s %7s %7s\n", "phase", "ms", "%", "GFLOP", "GFLOP/s", "%fp32", "%bf16",
              "%int8");
  auto print_row = [&](const PhaseRow& r) {
    const double rate = r.ms > 0 ? r.gflop / r.ms * 1e3 : 0.0;
    auto pct = [&](double peak) { return peak > 0 && r.gflop > 0 ? 100.0 * rate / peak : 0.0; };
    std::printf("  %-30s %10.1f %6.1f %9.2f %9.1f %7.1f %7.1f %7.1f\n", r.name.c_str(), r.ms, 100.0 * r.ms / step_ms,
                r.gflop, rate, pct(peaks.fp32), pct(peaks.bf16), pct(peaks.int8));
  };
  for (const auto& r : rows) print_row(r);
  std::printf("  %-30s %10.1f %6.1f\n", "unattributed", other_ms, 100.0 * other_ms / step_ms);
  if (xgemm_ms > 0) {
    std::printf("  moe_experts, of which (per-thread time / threads):\n");
    for (const auto& r : expert_rows) print_row(r);
  }
  std::printf("  %-30s %10.1f\n", "total", step_ms);
  std::printf("\n  per layer %.1f ms, fixed part %.1f ms -> %.1f ms per step at 30 layers\n", per_layer_ms,
              fixed_ms + other_ms, step30_ms);
  std::printf("\ncommit pass (%lld tokens)  %.1f ms\n", static_cast<long long>(C), commit_ms);
  std::printf("memory     file %.2f GB, peak RSS %.2f GB (file + %.2f GB)\n", file_bytes / 1e9, peak_rss_bytes() / 1e9,
              (static_cast<double>(peak_rss_bytes()) - static_cast<double>(file_bytes)) / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

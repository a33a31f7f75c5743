// The generation loop (DiffusionGemmaGenerationMixin.generate, batch size 1; model-spec §7).
// Buffers are sized once per call; the per-step work allocates nothing.
#include "diffgemma/generate.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <utility>

#include "diffgemma/error.h"
#include "diffusion/entropy_bound.h"
#include "diffusion/random_stream.h"
#include "diffusion/schedule.h"
#include "diffusion/stopping.h"
#include "diffusion/token_sampler.h"
#include "cpu/cpu_features.h"
#include "model/model_impl.h"
#include "util/thread_pool.h"

namespace dg {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::EOS: return "eos";
    case StopReason::LENGTH: return "length";
    case StopReason::CANCELLED: return "cancelled";
  }
  return "?";
}

int64_t required_context(const Model& model, int64_t n_past, int64_t n_prompt, int64_t max_new_tokens) {
  const int64_t C = model.hparams().canvas_length;
  const int64_t n_canvases = (max_new_tokens + C - 1) / C;
  return n_past + n_prompt + n_canvases * C;
}

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Round-to-nearest-even to bfloat16, kept in an fp32 container (`processed_logits.to(bf16)`).
void round_to_bf16(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, &x[i], 4);
    if ((b & 0x7F800000u) == 0x7F800000u && (b & 0x007FFFFFu)) continue;  // NaN stays NaN
    b += 0x7FFFu + ((b >> 16) & 1u);
    b &= 0xFFFF0000u;
    std::memcpy(&x[i], &b, 4);
  }
}

bool is_eos(const std::vector<int32_t>& eos, int32_t id) {
  return std::find(eos.begin(), eos.end(), id) != eos.end();
}

}  // namespace

void sample_positions(const Model& model, float* logits, int64_t C, float t, uint64_t seed, int64_t canvas,
                      int32_t step, int32_t* argmax, int32_t* sample, float* entropy, std::vector<float>& scratch) {
  ThreadPool& pool = *model.impl().pool;
  const int64_t V = model.hparams().n_vocab;
  const bool fast = fast_path();
  const int64_t per_thread = fast ? diffusion::process_row_fast_scratch(V) : V;
  const size_t need = static_cast<size_t>(pool.n_threads()) * static_cast<size_t>(per_thread);
  if (scratch.size() < need) scratch.resize(need);
  pool.parallel_for(C, [&](int64_t b, int64_t e, int tid) {
    float* row_scratch = scratch.data() + static_cast<size_t>(tid) * static_cast<size_t>(per_thread);
    for (int64_t pos = b; pos < e; ++pos) {
      const double u = rng::uniform(seed, rng::SAMPLE, canvas, step, pos);
      float* row = logits + static_cast<size_t>(pos) * static_cast<size_t>(V);
      const diffusion::RowResult r = fast ? diffusion::process_row_fast(row, V, t, u, row_scratch)
                                          : diffusion::process_row(row, V, t, u, row_scratch);
      argmax[pos] = r.argmax;
      sample[pos] = r.sample;
      entropy[pos] = r.entropy;
    }
  });
}

void self_conditioning_input(const Model& model, float* logits, int64_t C) {
  // Self-conditioning input is the scaled logits cast to the embedding dtype: fp32 for an F32
  // token_embd, bf16 for anything else (the released checkpoint is bf16).
  const GGUFTensor* embd = model.impl().file->find_tensor("token_embd.weight");
  if (!embd || embd->type == GGMLType::F32) return;
  const int64_t V = model.hparams().n_vocab;
  model.impl().pool->parallel_for(C, [&](int64_t b, int64_t e, int) {
    round_to_bf16(logits + static_cast<size_t>(b) * static_cast<size_t>(V), (e - b) * V);
  });
}

GenerateResult generate(Context& ctx, const std::vector<int32_t>& prompt, const GenerateParams& params) {
  const Model& model = ctx.model();
  const ModelHParams& hp = model.hparams();
  const int64_t V = hp.n_vocab;
  const int32_t C = static_cast<int32_t>(hp.canvas_length);
  const DiffusionParams& dp = params.diffusion;

  if (std::string bad = dp.validate(); !bad.empty()) throw Error(bad);
  if (params.max_new_tokens <= 0)
    throw Error("max_new_tokens must be a positive integer (got " + std::to_string(params.max_new_tokens) + ")");
  if (prompt.empty() && ctx.n_past() == 0) throw Error("the prompt is empty: at least one token is needed");
  if (!params.initial_canvas.empty() && static_cast<int64_t>(params.initial_canvas.size()) != C)
    throw Error("initial canvas has " + std::to_string(params.initial_canvas.size()) +
                " tokens; the model's canvas length is " + std::to_string(C));
  for (int32_t id : params.initial_canvas)
    if (id < 0 || id >= V) throw Error("initial canvas token id " + std::to_string(id) + " is out of range");
  if (C > ctx.n_batch()) throw Error("the context's n_batch is smaller than the canvas length");
  const int64_t need = required_context(model, ctx.n_past(), static_cast<int64_t>(prompt.size()), params.max_new_tokens);
  if (need > ctx.n_ctx())
    throw Error("context too small: " + std::to_string(ctx.n_past()) + " cached + " + std::to_string(prompt.size()) +
                " prompt + " + std::to_string(need - ctx.n_past() - static_cast<int64_t>(prompt.size())) +
                " canvas tokens need n_ctx >= " + std::to_string(need) + " (have " + std::to_string(ctx.n_ctx()) + ")");

  std::vector<int32_t> eos;
  if (!params.no_eos) eos = params.eos_ids.empty() ? default_eos_ids(model) : params.eos_ids;
  for (int32_t id : eos)
    if (id < 0 || id >= V) throw Error("eos token id " + std::to_string(id) + " is out of range");
  const int32_t pad = params.pad_id == -2 ? default_pad_id(model) : params.pad_id;
  if (pad < -1 || pad >= V) throw Error("pad token id " + std::to_string(pad) + " is out of range");

  const size_t CV = static_cast<size_t>(C) * static_cast<size_t>(V);
  std::vector<float> logits_buf(CV), sc_buf(CV), scratch;
  float* logits = logits_buf.data();
  float* sc = sc_buf.data();
  std::vector<int32_t> x(C), am(C), sample(C);
  std::vector<float> entropy(C);
  std::vector<uint8_t> accepted(C);
  std::vector<diffusion::EntropyOrderItem> order(C);
  diffusion::StableAndConfident stopper;

  const int32_t N = dp.max_denoising_steps;
  const int64_t n_canvases = (params.max_new_tokens + C - 1) / C;
  const uint64_t seed = params.seed;

  GenerateResult res;
  GenerateStats& st = res.stats;
  st.prompt_tokens = static_cast<int64_t>(prompt.size());
  res.canvases.reserve(static_cast<size_t>(n_canvases) * C);
  auto cancelled = [&] { return params.cancel && params.cancel->load(std::memory_order_relaxed); };
  auto emit = [&](const GenerateEvent& ev) {
    if (params.on_event) params.on_event(ev);
  };

  const Clock::time_point t_start = Clock::now();
  if (!prompt.empty()) ctx.encode(prompt.data(), static_cast<int64_t>(prompt.size()));
  st.prefill_ms = ms_since(t_start);

  bool finished = false;
  for (int64_t c = 0; c < n_canvases && !finished; ++c) {
    // Stream 0 is drawn for every canvas, even when a starting canvas is supplied (transformers
    // evaluates initialize_canvas as the default argument of model_kwargs.pop).
    for (int32_t pos = 0; pos < C; ++pos)
      x[pos] = static_cast<int32_t>(rng::draw(seed, rng::INIT_CANVAS, c, 0, pos) % static_cast<uint64_t>(V));
    if (c == 0 && !params.initial_canvas.empty()) x = params.initial_canvas;
    am = x;
    stopper.reset(dp.stability_threshold, dp.confidence_threshold, C);
    bool have_sc = false;

    const Clock::time_point t_denoise = Clock::now();
    for (int32_t s = 0; s < N; ++s) {
      if (cancelled()) {
        res.stop = StopReason::CANCELLED;
        st.denoise_ms += ms_since(t_denoise);
        goto finish;
      }
      const int32_t cur_step = N - s;
      ctx.denoise(x.data(), C, have_sc ? sc : nullptr, logits);
      st.denoising_steps += 1;
      const float t = diffusion::temperature(dp.t_min, dp.t_max, cur_step, N);
      sample_positions(model, logits, C, t, seed, c, s, am.data(), sample.data(), entropy.data(), scratch);
      const int32_t n_acc =
          diffusion::accept_by_entropy_bound(entropy.data(), C, dp.entropy_bound, accepted.data(), order);
      // Accepted positions take the sample, the rest fresh noise (acceptance is not cumulative).
      for (int32_t pos = 0; pos < C; ++pos)
        x[pos] = accepted[pos] ? sample[pos]
                               : static_cast<int32_t>(rng::draw(seed, rng::RENOISE, c, s, pos) % static_cast<uint64_t>(V));
      const bool stop = stopper.update(am.data(), entropy.data());
      std::swap(logits, sc);  // the scaled logits become the next step's self-conditioning input
      self_conditioning_input(model, sc, C);
      have_sc = true;
      if (params.draft_events && params.on_event) {
        GenerateEvent ev;
        ev.type = GenerateEvent::Type::DRAFT;
        ev.canvas = static_cast<int32_t>(c);
        ev.step = s;
        ev.canvas_length = C;
        ev.argmax = am.data();
        ev.next = x.data();
        ev.accepted = accepted.data();
        ev.n_accepted = n_acc;
        ev.temperature = t;
        ev.mean_entropy = stopper.last_mean_entropy();
        ev.stopped = stop;
        ev.sc_logits = sc;
        emit(ev);
      }
      if (stop) {
        st.converged_canvases += 1;
        break;
      }
    }
    st.denoise_ms += ms_since(t_denoise);

    // Commit the argmax canvas of the last step. EOS: pad everything after the first EOS.
    st.canvases += 1;
    const size_t base = res.canvases.size();
    res.canvases.insert(res.canvases.end(), am.begin(), am.end());
    int32_t eos_at = -1;
    for (int32_t pos = 0; pos < C && eos_at < 0; ++pos)
      if (is_eos(eos, am[pos])) eos_at = pos;
    if (eos_at >= 0) {
      finished = true;
      res.stop = StopReason::EOS;
      res.eos_token = am[eos_at];
      if (pad >= 0)
        for (int32_t pos = eos_at + 1; pos < C; ++pos) res.canvases[base + pos] = pad;
    }
    if (static_cast<int64_t>(res.canvases.size()) >= params.max_new_tokens) finished = true;
    if (c == 0) st.ttfc_ms = ms_since(t_start);
    {
      const int64_t before = static_cast<int64_t>(base);
      int64_t valid = eos_at >= 0 ? eos_at : C;
      valid = std::min<int64_t>(valid, std::max<int64_t>(0, params.max_new_tokens - before));
      // Statistics so far, for the event.
      int64_t non_pad = 0;
      for (int32_t id : res.canvases) non_pad += (pad < 0 || id != pad) ? 1 : 0;
      st.tokens_per_forward = static_cast<double>(non_pad) / st.denoising_steps;
      st.generated_tokens = before + valid;
      st.total_ms = ms_since(t_start);
      GenerateEvent ev;
      ev.type = GenerateEvent::Type::COMMIT;
      ev.canvas = static_cast<int32_t>(c);
      ev.canvas_length = C;
      ev.argmax = res.canvases.data() + base;
      ev.n_valid = static_cast<int32_t>(valid);
      ev.stats = &st;
      emit(ev);
    }
    if (!finished) {
      const Clock::time_point t_commit = Clock::now();
      ctx.commit(am.data(), C);  // re-encoded at the positions it was denoised at
      st.commit_ms += ms_since(t_commit);
    }
  }

finish:
  // The answer: up to the first EOS, at most max_new_tokens. The stop reason is EOS only when the
  // EOS lies within the first max_new_tokens tokens.
  {
    const int64_t n_max = params.max_new_tokens;
    int64_t n = 0;
    int64_t eos_pos = -1;
    for (; n < static_cast<int64_t>(res.canvases.size()) && n < n_max; ++n) {
      if (is_eos(eos, res.canvases[n])) {
        eos_pos = n;
        break;
      }
    }
    res.tokens.assign(res.canvases.begin(), res.canvases.begin() + n);
    if (res.stop == StopReason::EOS && eos_pos < 0) {
      res.stop = StopReason::LENGTH;
      res.eos_token = -1;
    }
    // The final canvas is never encoded (as in transformers): hand back as much of it as the
    // answer covers, EOS included, for a follow-up turn to encode. A cancelled run has encoded
    // every canvas it kept.
    if (res.stop != StopReason::CANCELLED && st.canvases > 0) {
      const int64_t last = static_cast<int64_t>(st.canvases - 1) * C;
      const int64_t end = eos_pos >= 0 ? eos_pos + 1 : n;
      if (end > last) res.pending_tokens.assign(res.canvases.begin() + last, res.canvases.begin() + end);
    }
  }
  {
    int64_t valid = 0;
    for (int32_t id : res.canvases) valid += (pad < 0 || id != pad) ? 1 : 0;
    st.tokens_per_forward = st.denoising_steps ? static_cast<double>(valid) / st.denoising_steps : 0.0;
  }
  st.generated_tokens = static_cast<int64_t>(res.tokens.size());
  st.total_ms = ms_since(t_start);
  {
    GenerateEvent ev;
    ev.type = GenerateEvent::Type::DONE;
    ev.canvas = st.canvases;
    ev.canvas_length = C;
    ev.stats = &st;
    emit(ev);
  }
  return res;
}

}  // namespace dg

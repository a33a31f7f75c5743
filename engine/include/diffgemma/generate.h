// The block-diffusion generation loop (transformers DiffusionGemmaGenerationMixin.generate, batch 1;
// model-spec §7): encode the prompt, then per canvas: start from uniform random ids, denoise for up to
// `max_denoising_steps` steps (linear temperature schedule, categorical sample and argmax, entropy-bound
// acceptance, renoise of the rest, stable-and-confident early stop, self-conditioning on the previous
// step's scaled logits), commit the argmax canvas through the encoder, stop at the first canvas that
// holds an end-of-generation token or when `max_new_tokens` are generated.
//
// Every random draw comes from the counter-based stream of model-spec §10.2 keyed by the seed, so
// one seed gives the same tokens for any thread count, and transformers patched with the same
// stream gives the same tokens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffgemma/context.h"
#include "diffgemma/model.h"

namespace dg {

// The diffusion knobs, under transformers' names (DiffusionGemmaGenerationConfig).
struct DiffusionParams {
  int32_t max_denoising_steps = 48;   // N; the temperature schedule is parameterised by it
  float t_min = 0.4f;                 // temperature at cur_step 0 (never reached: last step is 1)
  float t_max = 0.8f;                 // temperature at the first step (cur_step = N)
  float entropy_bound = 0.1f;         // accept the lowest-entropy positions while Σ(others) <= bound
  int32_t stability_threshold = 1;    // argmax canvas unchanged for this many steps (0: always)
  float confidence_threshold = 0.005f;  // ... and mean entropy below this: the canvas is done

  // The GGUF's diffusion.eb_* keys where present, transformers' defaults otherwise.
  static DiffusionParams from_model(const Model& model);
  // "" when valid, else a sentence naming the bad value (transformers' validate() rules).
  std::string validate() const;
};

// End-of-generation ids of a model: tokenizer.ggml.eos_token_id plus the tokens whose text is
// "<turn|>" or "<|tool_response>" ({1, 106, 50} for DiffusionGemma). Sorted, unique.
std::vector<int32_t> default_eos_ids(const Model& model);
// tokenizer.ggml.padding_token_id, or -1 when the file has none.
int32_t default_pad_id(const Model& model);

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;    // tokens returned (after EOS and max_new_tokens trimming)
  int32_t canvases = 0;
  int32_t denoising_steps = 0;     // decoder passes, summed over canvases
  int32_t converged_canvases = 0;  // canvases stopped by stable-and-confident (not by the step cap)
  double tokens_per_forward = 0;   // transformers: committed tokens != pad / decoder passes
  double prefill_ms = 0;           // encoder pass over the prompt
  double denoise_ms = 0;           // decoder passes plus sampling, all canvases
  double commit_ms = 0;            // encoder passes over committed canvases
  double total_ms = 0;
  double ttfc_ms = 0;              // start to first committed canvas (prefill included)
  double ms_per_step() const { return denoising_steps ? denoise_ms / denoising_steps : 0; }
  double tokens_per_second() const { return total_ms > 0 ? 1000.0 * generated_tokens / total_ms : 0; }
  bool converged() const { return canvases > 0 && converged_canvases == canvases; }
};

// One event of a generation, passed to GenerateParams::on_event while the loop runs. Pointers are
// valid only during the callback.
struct GenerateEvent {
  enum class Type { DRAFT, COMMIT, DONE };
  Type type = Type::DRAFT;
  int32_t canvas = 0;          // index of the canvas in this call, from 0
  int32_t step = 0;            // DRAFT: denoising step of the canvas, from 0
  int32_t canvas_length = 0;   // C
  const int32_t* argmax = nullptr;    // DRAFT: argmax canvas of this step [C] (transformers' draft)
                                      // COMMIT: the committed canvas [C], pad after the first EOS
  const int32_t* next = nullptr;      // DRAFT: next step's input: accepted samples + renoise [C]
  const uint8_t* accepted = nullptr;  // DRAFT: 1 where the sample was accepted [C]
  int32_t n_accepted = 0;             // DRAFT
  float temperature = 0.0f;           // DRAFT
  float mean_entropy = 0.0f;          // DRAFT
  bool stopped = false;               // DRAFT: stable and confident: this was the canvas's last step
  const float* sc_logits = nullptr;   // DRAFT: [C, V] the scaled logits as the next step's
                                      // self-conditioning input (bf16-rounded for non-F32 models);
                                      // transformers' put_draft(logits=...)
  int32_t n_valid = 0;                // COMMIT: tokens of this canvas that count toward the output
  const GenerateStats* stats = nullptr;  // DONE (also set for COMMIT: stats so far)
};

struct GenerateParams {
  DiffusionParams diffusion;
  int64_t max_new_tokens = 256;       // output is trimmed to this; ceil(n / C) canvases at most
  uint64_t seed = 0;
  std::vector<int32_t> eos_ids;       // empty: default_eos_ids(model)
  bool no_eos = false;                // ignore EOS entirely (eos_token_id=[]): always run n tokens
  int32_t pad_id = -2;                // -2: default_pad_id(model); -1: no padding
  std::vector<int32_t> initial_canvas;  // transformers' decoder_input_ids: first canvas's start [C]
  bool draft_events = true;           // DRAFT events per step (COMMIT/DONE always)
  const std::atomic<bool>* cancel = nullptr;  // set from any thread: stop after the current pass
  std::function<void(const GenerateEvent&)> on_event;
};

enum class StopReason { EOS, LENGTH, CANCELLED };
const char* stop_reason_name(StopReason r);  // "eos", "length", "cancelled"

struct GenerateResult {
  // The answer: committed tokens up to (not including) the first EOS, at most max_new_tokens.
  std::vector<int32_t> tokens;
  // Every committed canvas back to back, as transformers returns sequences[P:] (pad after the
  // first EOS; not trimmed to max_new_tokens).
  std::vector<int32_t> canvases;
  int32_t eos_token = -1;  // the EOS id that ended generation, or -1
  StopReason stop = StopReason::LENGTH;
  // Tokens the context has NOT encoded: the last canvas is never committed (as in transformers).
  // For a follow-up turn, encode `tokens` of the last canvas (and the EOS) before the next prompt;
  // see pending_tokens.
  std::vector<int32_t> pending_tokens;  // last canvas up to and including the EOS
  GenerateStats stats;
};

// Runs the loop on `ctx`: encodes `prompt` at ctx.n_past() (appending to what is cached), then
// denoises. Throws dg::Error for bad parameters, out-of-range ids or a context too small for
// prompt + canvases. On cancellation, returns what was committed so far with stop = CANCELLED.
GenerateResult generate(Context& ctx, const std::vector<int32_t>& prompt, const GenerateParams& params);

// The vocabulary work of one denoising step, as generate() runs it after each decoder pass, on C
// rows of logits [C, V]: scales them in place by 1/t and writes every position's argmax, entropy
// and categorical sample (stream 1 of model-spec §10.2 at (seed, canvas, step, position)). Rows
// are split over the model's threads. The exact kernels run the fp64 reference sampler; the fast
// path fused vector passes. `scratch` grows on first use and is reused after.
void sample_positions(const Model& model, float* logits, int64_t C, float t, uint64_t seed, int64_t canvas,
                      int32_t step, int32_t* argmax, int32_t* sample, float* entropy, std::vector<float>& scratch);

// Makes C rows of scaled logits [C, V] the next step's self-conditioning input, in place: rounded
// to bfloat16 (transformers' `processed_logits.to(dtype)`) unless token_embd is F32. Rows split
// over the model's threads.
void self_conditioning_input(const Model& model, float* logits, int64_t C);

// The context size one generate() call needs: n_past + prompt + ceil(n / C) * C.
int64_t required_context(const Model& model, int64_t n_past, int64_t n_prompt, int64_t max_new_tokens);

}  // namespace dg

// The state of one generation: the KV cache of everything encoded so far and the activation
// buffers of one pass (allocated once, here). Three operations, in the model's own words:
//   encode(ids)          causal encoder pass; appends K/V at positions [n_past, n_past + n)
//   denoise(canvas, sc)  bidirectional decoder pass over cache + canvas at [n_past, n_past + C);
//                        returns softcapped logits [C, V]; reads the cache, never writes it
//   commit(canvas)       re-encodes the committed canvas at the positions it was denoised at
#pragma once

#include <cstdint>
#include <memory>

#include "diffgemma/model.h"
#include "diffgemma/profile.h"

namespace dg {

struct ContextParams {
  int64_t n_ctx = 4096;   // most positions the cache can hold
  int64_t n_batch = 0;    // rows per pass (encode chunks longer inputs); 0: max(canvas, 512)
  bool record_hidden = false;  // keep every layer's output of the last pass (tests)
  // Opt-in approximation of the self-conditioning soft embedding softmax(sc_logits) @ E: only the
  // k most probable tokens of each position (ties: the lower id), with their exact probabilities
  // (not renormalised), so the error is the dropped tail's share. 0 (default) or >= vocabulary:
  // exact, every token.
  int64_t sc_top_k = 0;
};

struct ContextImpl;

class Context {
 public:
  Context(std::shared_ptr<const Model> model, const ContextParams& params = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  void encode(const int32_t* ids, int64_t n);
  // canvas: n ids (n <= n_batch); sc_logits: [n, V] or nullptr (first step); logits: [n, V].
  void denoise(const int32_t* canvas, int64_t n, const float* sc_logits, float* logits);
  void commit(const int32_t* canvas, int64_t n);
  void clear();  // forget the cache

  // Per-phase wall time of the passes (diffgemma/profile.h); off (and free) by default.
  void set_profiling(bool on);
  const PhaseTimes& phase_times() const;
  void reset_phase_times();

  int64_t n_past() const;
  int64_t n_batch() const;
  int64_t n_ctx() const;  // most positions the cache can hold
  const Model& model() const;

  // Test access. Cache of layer il: `kv_len` entries at positions [kv_pos0, kv_pos0 + kv_len),
  // copied out as [n_kv_head, kv_len, head_dim] (the transformers cache layout).
  int64_t kv_len(int64_t il) const;
  int64_t kv_pos0(int64_t il) const;
  void read_kv(int64_t il, float* k, float* v) const;
  // Output of layer il for the rows of the last pass (or its last chunk): [hidden_rows, H].
  // Needs record_hidden.
  int64_t hidden_rows() const;
  void read_hidden(int64_t il, float* out) const;

 private:
  std::unique_ptr<ContextImpl> impl_;
};

}  // namespace dg

#include "diffgemma/context.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "model/context_impl.h"

namespace dg {

ContextImpl::ContextImpl(std::shared_ptr<const Model> model, const ContextParams& p)
    : model_ref(std::move(model)), m(model_ref->impl()), hp(m.hp), pool(*m.pool), params(p) {
  if (params.n_ctx <= 0) throw Error("context: n_ctx must be > 0");
  n_batch = params.n_batch > 0 ? params.n_batch : std::max<int64_t>(hp.canvas_length, 512);
  cache.init(hp, params.n_ctx);

  const int64_t T = n_batch, H = hp.n_embd, F = hp.n_ff, E = hp.n_expert, K = hp.n_expert_used;
  const int64_t I = hp.n_ff_exp;
  int64_t qw = 0, kw = 0, max_keys = 0;
  for (int64_t il = 0; il < hp.n_layer; ++il) {
    qw = std::max(qw, hp.n_head * hp.head_dim(il));
    kw = std::max(kw, hp.n_kv_head[static_cast<size_t>(il)] * hp.head_dim(il));
    max_keys = std::max(max_keys, cache.capacity(il) + T);
  }
  auto sz = [](int64_t a, int64_t b) { return static_cast<size_t>(a * b); };
  x.resize(sz(T, H));
  hn.resize(sz(T, H));
  q.resize(sz(T, qw));
  k.resize(sz(T, kw));
  v.resize(sz(T, kw));
  attn.resize(sz(T, qw));
  proj.resize(sz(T, H));
  ffn_g.resize(sz(T, F));
  ffn_u.resize(sz(T, F));
  h1.resize(sz(T, H));
  e_in.resize(sz(T, H));
  h2.resize(sz(T, H));
  r_tmp.resize(sz(T, H));
  r_logit.resize(sz(T, E));
  r_ids.resize(sz(T, K));
  r_w.resize(sz(T, K));
  xg.resize(sz(T * K, H));
  eg.resize(sz(T * K, I));
  eu.resize(sz(T * K, I));
  ey.resize(sz(T * K, H));
  slot_of.resize(sz(T, K));
  token_of.resize(sz(T, K));
  e_count.resize(static_cast<size_t>(E + 1));
  cos_swa.resize(sz(T, hp.n_rot_swa / 2));
  sin_swa.resize(sz(T, hp.n_rot_swa / 2));
  cos_full.resize(sz(T, hp.n_rot_full / 2));
  sin_full.resize(sz(T, hp.n_rot_full / 2));
  sc_rows = std::min(T, hp.canvas_length);

  const int64_t widest = std::max({H, F, qw, I, kTransposedColumns});
  const int n_th = pool.n_threads();
  row_scratch.resize(sz(n_th, widest));
  rows = RowScratch{row_scratch.data(), widest};
  const int64_t max_hd = std::max(hp.head_dim_full, hp.head_dim_swa);
  attn_scores.resize(sz(n_th, kAttentionRowBlock * max_keys));
  attn_acc.resize(sz(n_th, max_hd));
  attn_scratch = AttentionScratch{attn_scores.data(), kAttentionRowBlock * max_keys, attn_acc.data(), max_hd};
  qa_rows.reserve(T, std::max({H, F, qw}));
  qa_slots_in.reserve(T * K, H);
  qa_slots_mid.reserve(T * K, I);
  if (params.record_hidden) hidden.resize(sz(hp.n_layer, T * H));
}

void ContextImpl::check_ids(const int32_t* ids, int64_t n) const {
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= hp.n_vocab)
      throw Error("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                  " is out of range for a vocabulary of " + std::to_string(hp.n_vocab));
  }
}

void ContextImpl::record(int64_t il, int64_t T) {
  if (!params.record_hidden) return;
  std::memcpy(hidden.data() + il * n_batch * hp.n_embd, x.data(), sizeof(float) * T * hp.n_embd);
  hidden_rows = T;
}

Context::Context(std::shared_ptr<const Model> model, const ContextParams& params) {
  if (!model) throw Error("context: no model");
  impl_ = std::make_unique<ContextImpl>(std::move(model), params);
}

Context::~Context() = default;

void Context::encode(const int32_t* ids, int64_t n) {
  ContextImpl& c = *impl_;
  if (n <= 0) return;
  c.check_ids(ids, n);
  if (c.n_past + n > c.params.n_ctx)
    throw Error("context is full: " + std::to_string(c.n_past) + " + " + std::to_string(n) +
                " tokens exceed n_ctx = " + std::to_string(c.params.n_ctx));
  for (int64_t i = 0; i < n; i += c.n_batch) c.encode_chunk(ids + i, std::min(c.n_batch, n - i));
}

void Context::denoise(const int32_t* canvas, int64_t n, const float* sc_logits, float* logits) {
  ContextImpl& c = *impl_;
  if (n <= 0 || n > c.n_batch)
    throw Error("canvas of " + std::to_string(n) + " tokens: must be 1.." + std::to_string(c.n_batch) +
                " (the context's n_batch)");
  c.check_ids(canvas, n);
  c.decode(canvas, n, sc_logits, logits);
}

void Context::commit(const int32_t* canvas, int64_t n) { encode(canvas, n); }

void Context::set_profiling(bool on) { impl_->prof = on ? &impl_->times : nullptr; }
const PhaseTimes& Context::phase_times() const { return impl_->times; }
void Context::reset_phase_times() { impl_->times = PhaseTimes{}; }

void Context::clear() {
  impl_->cache.clear();
  impl_->n_past = 0;
}

int64_t Context::n_past() const { return impl_->n_past; }
int64_t Context::n_batch() const { return impl_->n_batch; }
int64_t Context::n_ctx() const { return impl_->params.n_ctx; }
const Model& Context::model() const { return *impl_->model_ref; }

static void check_layer(const ContextImpl& c, int64_t il) {
  if (il < 0 || il >= c.hp.n_layer)
    throw Error("layer " + std::to_string(il) + " out of range (" + std::to_string(c.hp.n_layer) + " layers)");
}

int64_t Context::kv_len(int64_t il) const {
  check_layer(*impl_, il);
  return impl_->cache.len(il);
}

int64_t Context::kv_pos0(int64_t il) const {
  check_layer(*impl_, il);
  return impl_->cache.pos0(il);
}

void Context::read_kv(int64_t il, float* k, float* v) const {
  check_layer(*impl_, il);
  const ContextImpl& c = *impl_;
  const KVSpan s = c.cache.span(il);
  const int64_t hd = c.hp.head_dim(il), nkv = c.hp.n_kv_head[static_cast<size_t>(il)];
  for (int64_t h = 0; h < nkv; ++h)
    for (int64_t j = 0; j < s.len; ++j) {
      std::memcpy(k + (h * s.len + j) * hd, s.k + j * s.ld + h * hd, sizeof(float) * hd);
      std::memcpy(v + (h * s.len + j) * hd, s.v + j * s.ld + h * hd, sizeof(float) * hd);
    }
}

int64_t Context::hidden_rows() const { return impl_->hidden_rows; }

void Context::read_hidden(int64_t il, float* out) const {
  check_layer(*impl_, il);
  const ContextImpl& c = *impl_;
  if (!c.params.record_hidden) throw Error("hidden states are recorded only with record_hidden");
  std::memcpy(out, c.hidden.data() + il * c.n_batch * c.hp.n_embd, sizeof(float) * c.hidden_rows * c.hp.n_embd);
}

}  // namespace dg

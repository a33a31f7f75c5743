// The decoder pass (DiffusionGemmaDecoderModel.forward + DiffusionGemmaForBlockDiffusion
// logits): self-conditioned canvas embedding, bidirectional layers over cache + canvas,
// final norm, tied LM head, softcap 30*tanh(x/30) (inside the LM head's matmul).
#include "cpu/activation.h"
#include "cpu/norm.h"
#include "cpu/rope.h"
#include "model/context_impl.h"
#include "util/timing.h"

namespace dg {

void ContextImpl::decode(const int32_t* canvas, int64_t T, const float* sc_logits, float* logits) {
  const int64_t pos0 = n_past, H = hp.n_embd, V = hp.n_vocab;
  rope_tables(m.inv_freq_swa, pos0, T, cos_swa.data(), sin_swa.data());
  rope_tables(m.inv_freq_full, pos0, T, cos_full.data(), sin_full.data());
  self_conditioning(canvas, T, sc_logits);
  for (int64_t il = 0; il < hp.n_layer; ++il) layer(il, T, pos0, Pass::kDecode);

  PhaseClock clk(prof);
  clk.at(Phase::kLMHead);
  rms_norm(pool, x.data(), H, hn.data(), H, T, H, m.w.output_norm.data(), hp.norm_eps);
  matmul(pool, m.w.output, linear_input(pool, hn.data(), H, T, H, qa_rows), logits, V, rows, hp.logit_softcap);
}

}  // namespace dg

// The encoder pass (DiffusionGemmaEncoderTextModel.forward): causal over the cache plus the new
// tokens, writes their K/V. Its final norm feeds nothing at inference and is skipped.
#include <cstring>

#include "cpu/rope.h"
#include "model/context_impl.h"
#include "quant/dequantize.h"
#include "util/timing.h"

namespace dg {

// out[t] = E[ids[t]] * fp32(sqrt(H))  (DiffusionGemmaTextScaledWordEmbedding.forward)
void ContextImpl::embed(const int32_t* ids, int64_t T, float* out) {
  const int64_t H = hp.n_embd;
  PhaseClock clk(prof);
  clk.at(Phase::kEmbed);
  const WeightView& E = m.w.token_embd;
  pool.parallel_for(T, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      float* o = out + t * H;
      dequantize_row(E.type, E.row(ids[t]), 0, H, o);
      if (E.out_scale != 1.0f)
        for (int64_t i = 0; i < H; ++i) o[i] *= E.out_scale;
      for (int64_t i = 0; i < H; ++i) o[i] *= m.embed_scale;
    }
  });
}

void ContextImpl::encode_chunk(const int32_t* ids, int64_t T) {
  const int64_t pos0 = n_past;
  rope_tables(m.inv_freq_swa, pos0, T, cos_swa.data(), sin_swa.data());
  rope_tables(m.inv_freq_full, pos0, T, cos_full.data(), sin_full.data());
  embed(ids, T, x.data());
  for (int64_t il = 0; il < hp.n_layer; ++il) layer(il, T, pos0, Pass::kEncode);
  n_past += T;
}

}  // namespace dg

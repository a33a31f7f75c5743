#include "diffgemma/kernel_probe.h"

#include <string>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/gemm_bf16.h"
#include "cpu/matmul.h"
#include "cpu/qgemm.h"
#include "cpu/qpack.h"
#include "cpu/soft_embed_q8.h"
#include "diffgemma/error.h"
#include "quant/dequantize.h"
#include "util/thread_pool.h"

namespace dg {
namespace {

WeightView view(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, float out_scale) {
  if (!row_dequant_supported(type))
    throw Error("probe: type " + std::string(ggml_type_name(type)) + " is not read by the forward pass");
  if (n_in % dequant_block_size(type) != 0) throw Error("probe: row length is not a multiple of the block size");
  WeightView v;
  v.type = type;
  v.n_in = n_in;
  v.n_out = n_out;
  v.row_bytes = dequant_row_bytes(type, n_in);
  v.data = w;
  v.out_scale = out_scale;
  return v;
}

}  // namespace

bool probe_pack_applies(GGMLType type, int64_t n_out, int64_t n_in) {
  if (!row_dequant_supported(type) || n_in <= 0 || n_in % dequant_block_size(type) != 0) return false;
  WeightView v;
  v.type = type;
  v.n_in = n_in;
  v.n_out = n_out;
  v.row_bytes = dequant_row_bytes(type, n_in);
  return qpack_applies(v);
}

void probe_pack(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, uint8_t* packed, uint8_t* restored) {
  if (!probe_pack_applies(type, n_out, n_in))
    throw Error("probe: no packed layout for " + std::string(ggml_type_name(type)) + " [" + std::to_string(n_out) +
                ", " + std::to_string(n_in) + "]");
  WeightView v = view(type, w, n_out, n_in, 1.0f);
  qpack_panels(v, 0, n_out / kQNR, packed);
  v.data = packed;
  v.packed = true;
  qunpack_rows(v, restored);
}

void probe_linear(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, float out_scale, const float* x,
                  int64_t n_rows, float* y, int n_threads, bool packed) {
  WeightView v = view(type, w, n_out, n_in, out_scale);
  std::vector<uint8_t> pk;
  if (packed) {
    if (!qpack_applies(v)) throw Error("probe: no packed layout for this type and shape");
    pk.resize(static_cast<size_t>(n_out) * v.row_bytes);
    qpack_panels(v, 0, n_out / kQNR, pk.data());
    v.data = pk.data();
    v.packed = true;
  }
  ThreadPool pool(n_threads);
  QuantActsBuffer qa;
  qa.reserve(n_rows, n_in);
  std::vector<float> scratch(static_cast<size_t>(pool.n_threads()) * static_cast<size_t>(n_in));
  const RowScratch rows{scratch.data(), n_in};
  matmul(pool, v, linear_input(pool, x, n_in, n_rows, n_in, qa), y, n_out, rows);
}

void probe_soft_embed(GGMLType type, const uint8_t* w, int64_t n_out, int64_t n_in, float out_scale, const float* p,
                      int64_t n_rows, float* y, int n_threads) {
  const WeightView v = view(type, w, n_out, n_in, out_scale);
  ThreadPool pool(n_threads);
  if (fast_path() && soft_embed_q8_applies(v)) {  // as ContextImpl::self_conditioning
    QuantActsBuffer qa;
    qa.reserve(n_rows, n_out, /*signed_codes=*/false);
    const QuantActs q = qa.quantize(pool, p, n_out, n_rows, n_out);
    pool.parallel_for(n_in / 32, [&](int64_t b, int64_t e, int) { soft_embed_q8(v, b * 32, e * 32, q, y, n_in); });
    return;
  }
  if (fast_path() && bf16_gemm_available() && qgemm_supported(type) && n_out % 2 == 0 && n_in % 32 == 0) {
    std::vector<uint16_t> p16(static_cast<size_t>(n_rows * n_out));
    for (int64_t t = 0; t < n_rows; ++t) to_bf16(p + t * n_out, p16.data() + t * n_out, n_out);
    pool.parallel_for(n_in / 32, [&](int64_t b, int64_t e, int) {
      gemm_w_bf16(v, b * 32, e * 32, p16.data(), n_out, n_rows, y, n_in);
    });
    return;
  }
  std::vector<float> scratch(static_cast<size_t>(pool.n_threads()) * static_cast<size_t>(kTransposedColumns));
  matmul_transposed(pool, v, p, n_out, n_rows, y, n_in, RowScratch{scratch.data(), kTransposedColumns});
}

}  // namespace dg

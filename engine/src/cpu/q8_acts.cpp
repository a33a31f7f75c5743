#include "cpu/q8_acts.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu/cpu_features.h"
#include "util/thread_pool.h"

#include "cpu/x86_simd.h"

namespace dg {
namespace {

// Scale of one block: amax / 127 and its inverse (0 for an all-zero block).
inline void block_scale(float amax, float* d, float* id) {
  *d = amax / 127.0f;
  *id = *d != 0.0f ? 1.0f / *d : 0.0f;
}

void quantize_row_scalar(const float* x, int64_t K, const ActRow& r) {
  for (int64_t b = 0; b < K / kActBlock; ++b) {
    const float* xb = x + b * kActBlock;
    float amax = 0.0f;
    for (int i = 0; i < kActBlock; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    float db, id;
    block_scale(amax, &db, &id);
    int32_t sums[2] = {0, 0};
    for (int i = 0; i < kActBlock; ++i) {
      // x * id is at most 127 (plus rounding) in magnitude; nearbyint rounds half to even as
      // the SIMD conversions do.
      const int32_t v = static_cast<int32_t>(std::nearbyint(xb[i] * id));
      r.q[b * kActBlock + i] = static_cast<uint8_t>(v + 128);
      if (r.qs) r.qs[b * kActBlock + i] = static_cast<int8_t>(v);
      sums[i / 16] += v;
    }
    r.d[b] = db;
    r.ds[b] = db * static_cast<float>(sums[0] + sums[1]);
    r.qsum[b] = sums[0] + sums[1];
  }
}

#ifdef DG_X86
// GCC 12 warns inside its own reduction intrinsics (they start from _mm512_undefined): a false
// positive, silenced for this function only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f,avx512bw,avx512vl"))) void quantize_row_avx512(const float* x, int64_t K,
                                                                             const ActRow& r) {
  for (int64_t b = 0; b < K / kActBlock; ++b) {
    const __m512 x0 = _mm512_loadu_ps(x + b * kActBlock), x1 = _mm512_loadu_ps(x + b * kActBlock + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    float db, id;
    block_scale(amax, &db, &id);
    const __m512 iv = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, iv));  // MXCSR default: nearest even
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, iv));
    const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));  // q + 128 = q ^ 0x80 on int8
    const __m128i s0 = _mm512_cvtsepi32_epi8(q0), s1 = _mm512_cvtsepi32_epi8(q1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(r.q + b * kActBlock), _mm_xor_si128(s0, flip));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(r.q + b * kActBlock + 16), _mm_xor_si128(s1, flip));
    if (r.qs) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r.qs + b * kActBlock), s0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(r.qs + b * kActBlock + 16), s1);
    }
    const int32_t a = _mm512_reduce_add_epi32(q0), c = _mm512_reduce_add_epi32(q1);
    r.d[b] = db;
    r.ds[b] = db * static_cast<float>(a + c);
    r.qsum[b] = a + c;
  }
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

__attribute__((target("avx2,fma"))) inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2,fma"))) void quantize_row_avx2(const float* x, int64_t K, const ActRow& r) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < K / kActBlock; ++b) {
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(x + b * kActBlock + 8 * i);
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float db, id;
    block_scale(_mm_cvtss_f32(m4), &db, &id);
    const __m256 iv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int i = 0; i < 4; ++i) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], iv));
    int32_t sums[2];
    sums[0] = hsum_epi32(_mm256_add_epi32(qi[0], qi[1]));
    sums[1] = hsum_epi32(_mm256_add_epi32(qi[2], qi[3]));
    // int32 -> int8 (values lie in [-127, 127]: the packs do not saturate); packs interleave
    // 128-bit lanes, the permute restores element order.
    const __m256i p01 = _mm256_packs_epi32(qi[0], qi[1]), p23 = _mm256_packs_epi32(qi[2], qi[3]);
    const __m256i p = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(r.q + b * kActBlock), _mm256_xor_si256(p, _mm256_set1_epi8(static_cast<char>(0x80))));
    if (r.qs) _mm256_storeu_si256(reinterpret_cast<__m256i*>(r.qs + b * kActBlock), p);
    r.d[b] = db;
    r.ds[b] = db * static_cast<float>(sums[0] + sums[1]);
    r.qsum[b] = sums[0] + sums[1];
  }
}
#endif

}  // namespace

void quantize_act_row(const float* x, int64_t K, const ActRow& r) {
#ifdef DG_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAVX512) return quantize_row_avx512(x, K, r);
  if (isa != Isa::kScalar) return quantize_row_avx2(x, K, r);
#endif
  quantize_row_scalar(x, K, r);
}

void QuantActsBuffer::reserve(int64_t max_rows, int64_t max_k, bool signed_codes) {
  max_rows_ = max_rows;
  signed_ = signed_codes;
  max_k_ = (max_k + kActBlock - 1) / kActBlock * kActBlock;
  ldq_ = (max_k_ + 63) / 64 * 64;
  // Rows a multiple of 4 KiB apart (the soft embedding's 262144 codes) would all land in the same
  // cache sets: a row tile's codes would evict each other. One line more per row spreads them.
  if (ldq_ % 4096 == 0) ldq_ += 64;
  ldb_ = max_k_ / kActBlock;
  q_.assign(static_cast<size_t>(max_rows_ * ldq_ + 64), 0);
  d_.assign(static_cast<size_t>(max_rows_ * ldb_), 0.0f);
  ds_.assign(static_cast<size_t>(max_rows_ * ldb_), 0.0f);
  qs_.assign(signed_ ? static_cast<size_t>(max_rows_ * ldq_ + 64) : 0, 0);
  qsum_.assign(static_cast<size_t>(max_rows_ * ldb_), 0);
}

QuantActs QuantActsBuffer::view(int64_t n_rows, int64_t K) const {
  if (n_rows > max_rows_ || K > max_k_ || K % kActBlock != 0)
    throw std::logic_error("QuantActsBuffer: " + std::to_string(n_rows) + " x " + std::to_string(K) +
                           " does not fit (reserved " + std::to_string(max_rows_) + " x " + std::to_string(max_k_) + ")");
  QuantActs a;
  // 64-byte aligned codes: the kernels read them as broadcast dwords, any alignment works, but
  // aligned rows keep a row's blocks in as few cache lines as possible.
  const uintptr_t base = reinterpret_cast<uintptr_t>(q_.data());
  a.q = reinterpret_cast<const uint8_t*>((base + 63) & ~static_cast<uintptr_t>(63));
  a.d = d_.data();
  a.ds = ds_.data();
  const uintptr_t sbase = reinterpret_cast<uintptr_t>(qs_.data());
  a.qs = signed_ ? reinterpret_cast<const int8_t*>((sbase + 63) & ~static_cast<uintptr_t>(63)) : nullptr;
  a.qsum = qsum_.data();
  a.n_rows = n_rows;
  a.K = K;
  a.ldq = ldq_;
  a.ldb = ldb_;
  a.live = &gen_;
  a.gen = gen_;
  return a;
}

void QuantActsBuffer::begin(int64_t n_rows, int64_t K) {
  view(n_rows, K);  // checks the size
  ++gen_;
  cur_rows_ = n_rows;
  cur_k_ = K;
}

QuantActs QuantActsBuffer::quantize_rows(const float* x, int64_t ldx, int64_t r0, int64_t r1) {
  QuantActs a = view(cur_rows_, cur_k_);
  if (r0 < 0 || r1 > cur_rows_) throw std::logic_error("QuantActsBuffer::quantize_rows: rows out of range");
  for (int64_t r = r0; r < r1; ++r) quantize_act_row(x + r * ldx, cur_k_, act_row(a, r));
  return a;
}

ActRow QuantActsBuffer::act_row(const QuantActs& a, int64_t r) {
  return ActRow{const_cast<uint8_t*>(a.q) + r * ldq_, a.qs ? const_cast<int8_t*>(a.qs) + r * ldq_ : nullptr,
                d_.data() + r * ldb_, ds_.data() + r * ldb_, qsum_.data() + r * ldb_};
}

QuantActs QuantActsBuffer::gather(ThreadPool& pool, const QuantActs& src, const int32_t* rows, int64_t n_rows) {
  if (!src.valid()) throw std::logic_error("QuantActsBuffer::gather: the source was overwritten");
  if (signed_ && !src.qs) throw std::logic_error("QuantActsBuffer::gather: the source has no signed codes");
  begin(n_rows, src.K);
  QuantActs a = view(n_rows, src.K);
  const size_t nq = static_cast<size_t>(src.K), nb = static_cast<size_t>(src.K / kActBlock);
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t s = rows[r];
      std::memcpy(const_cast<uint8_t*>(a.q) + r * ldq_, src.q + s * src.ldq, nq);
      std::memcpy(d_.data() + r * ldb_, src.d + s * src.ldb, nb * sizeof(float));
      std::memcpy(ds_.data() + r * ldb_, src.ds + s * src.ldb, nb * sizeof(float));
      if (a.qs) std::memcpy(const_cast<int8_t*>(a.qs) + r * ldq_, src.qs + s * src.ldq, nq);
      std::memcpy(qsum_.data() + r * ldb_, src.qsum + s * src.ldb, nb * sizeof(int32_t));
    }
  });
  return a;
}

void QuantActsBuffer::quantize_row(const float* x, int64_t r) {
  if (r < 0 || r >= cur_rows_) throw std::logic_error("QuantActsBuffer::quantize_row: row out of range");
  quantize_act_row(x, cur_k_, act_row(view(cur_rows_, cur_k_), r));
}

QuantActs QuantActsBuffer::quantize(ThreadPool& pool, const float* x, int64_t ldx, int64_t n_rows, int64_t K) {
  begin(n_rows, K);
  pool.parallel_for(n_rows, [&](int64_t b, int64_t e, int) { quantize_rows(x, ldx, b, e); });
  return view(n_rows, K);
}

}  // namespace dg

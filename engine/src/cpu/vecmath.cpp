#include "cpu/vecmath.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cpu/cpu_features.h"

#include "cpu/x86_simd.h"

namespace dg {
namespace {

constexpr float kLo = -87.3f, kHi = 88.3f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;
constexpr float kBeta = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kKappa = 0.044715f;
constexpr float kTanhClamp = 9.0f;
constexpr int kLanes = 16;  // partial sums of the softmax, on every path

inline float bits_to_float(int32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

// Fixed reduction of the 16 partial sums.
inline float reduce16(float* lane) {
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] += lane[j + w];
  return lane[0];
}

#ifdef DG_X86
// GCC 12 warns inside its own masked and reduction intrinsics (they start from
// _mm512_undefined): a false positive, silenced for the SIMD bodies.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kLo), _CMP_GE_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kLo)), _mm512_set1_ps(kHi));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Hi), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-kLn2Lo), r);
  const __m512 z = _mm512_mul_ps(r, r);
  __m512 p = _mm512_set1_ps(kP0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP5));
  __m512 y = _mm512_fmadd_ps(p, z, r);
  y = _mm512_add_ps(y, _mm512_set1_ps(1.0f));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mov_ps(live, _mm512_mul_ps(y, _mm512_castsi512_ps(e)));
}

__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  const __m256 live = _mm256_cmp_ps(x, _mm256_set1_ps(kLo), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kLo)), _mm256_set1_ps(kHi));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Hi), x);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-kLn2Lo), r);
  const __m256 z = _mm256_mul_ps(r, r);
  __m256 p = _mm256_set1_ps(kP0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP5));
  __m256 y = _mm256_fmadd_ps(p, z, r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(live, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

__attribute__((target("avx512f"))) void gelu512(const float* g, const float* u, float* out, int64_t n) {
  int64_t i = 0;
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, g + i), up = _mm512_maskz_loadu_ps(m, u + i);
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    const __m512 s = _mm512_mul_ps(_mm512_set1_ps(kBeta), _mm512_add_ps(x, _mm512_mul_ps(_mm512_set1_ps(kKappa), x3)));
    const __m512 e = exp512(_mm512_mul_ps(s, _mm512_set1_ps(-2.0f)));
    const __m512 gl = _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(gl, up));
  }
}

__attribute__((target("avx2,fma"))) void gelu256(const float* g, const float* u, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i), up = _mm256_loadu_ps(u + i);
    const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    const __m256 s = _mm256_mul_ps(_mm256_set1_ps(kBeta), _mm256_add_ps(x, _mm256_mul_ps(_mm256_set1_ps(kKappa), x3)));
    const __m256 e = exp256(_mm256_mul_ps(s, _mm256_set1_ps(-2.0f)));
    const __m256 gl = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(gl, up));
  }
  for (; i < n; ++i) {
    const float x = g[i];
    const float s = kBeta * (x + kKappa * ((x * x) * x));
    out[i] = (x / (1.0f + exp_vec_def(s * -2.0f))) * u[i];
  }
}

__attribute__((target("avx512f"))) void softcap512(float* x, int64_t n, float cap) {
  const __m512 c = _mm512_set1_ps(cap), lim = _mm512_set1_ps(kTanhClamp), one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    __m512 y = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), c);
    y = _mm512_min_ps(_mm512_max_ps(y, _mm512_sub_ps(_mm512_setzero_ps(), lim)), lim);
    const __m512 e = exp512(_mm512_mul_ps(y, _mm512_set1_ps(2.0f)));
    const __m512 t = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(t, c));
  }
}

__attribute__((target("avx2,fma"))) void softcap256(float* x, int64_t n, float cap) {
  const __m256 c = _mm256_set1_ps(cap), lim = _mm256_set1_ps(kTanhClamp), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 y = _mm256_div_ps(_mm256_loadu_ps(x + i), c);
    y = _mm256_min_ps(_mm256_max_ps(y, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
    const __m256 e = exp256(_mm256_mul_ps(y, _mm256_set1_ps(2.0f)));
    const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    _mm256_storeu_ps(x + i, _mm256_mul_ps(t, c));
  }
  for (; i < n; ++i) {
    const float y = std::fmin(std::fmax(x[i] / cap, -kTanhClamp), kTanhClamp);
    x[i] = (1.0f - 2.0f / (exp_vec_def(y * 2.0f) + 1.0f)) * cap;
  }
}

__attribute__((target("avx512f"))) void softmax512(const float* src, float* dst, int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, src + i));
  }
  const __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, src + i), vm)));
    _mm512_mask_storeu_ps(dst + i, m, e);
    acc = _mm512_add_ps(acc, e);
  }
  alignas(64) float lane[kLanes];
  _mm512_store_ps(lane, acc);
  const __m512 inv = _mm512_set1_ps(1.0f / reduce16(lane));
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, dst + i), inv));
  }
}

__attribute__((target("avx2,fma"))) void softmax256(const float* src, float* dst, int64_t n) {
  float mx = -INFINITY;
  int64_t i = 0;
  __m256 vmx = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(src + i));
  alignas(32) float t8[8];
  _mm256_store_ps(t8, vmx);
  for (float v : t8) mx = std::fmax(mx, v);
  for (; i < n; ++i) mx = std::fmax(mx, src[i]);
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();  // lanes 0..7, 8..15
  i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(src + i), vm));
    const __m256 e1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(src + i + 8), vm));
    _mm256_storeu_ps(dst + i, e0);
    _mm256_storeu_ps(dst + i + 8, e1);
    a0 = _mm256_add_ps(a0, e0);
    a1 = _mm256_add_ps(a1, e1);
  }
  alignas(32) float lane[kLanes];
  _mm256_store_ps(lane, a0);
  _mm256_store_ps(lane + 8, a1);
  for (int j = 0; i < n; ++i, ++j) {
    dst[i] = exp_vec_def(src[i] - mx);
    lane[j] += dst[i];
  }
  const float inv = 1.0f / reduce16(lane);
  const __m256 vi = _mm256_set1_ps(inv);
  i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(dst + i), vi));
  for (; i < n; ++i) dst[i] *= inv;
}
__attribute__((target("avx512f"))) float scale_max_argmax512(float* x, int64_t n, float t, int64_t* argmax) {
  const __m512 tv = _mm512_set1_ps(t);
  __m512 mx = _mm512_set1_ps(-INFINITY);
  __m512i mi = _mm512_setzero_si512(), idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), tv);
    _mm512_mask_storeu_ps(x + i, m, v);
    const __mmask16 gt = _mm512_mask_cmp_ps_mask(m, v, mx, _CMP_GT_OQ);  // strictly greater: first index wins
    mx = _mm512_mask_mov_ps(mx, gt, v);
    mi = _mm512_mask_mov_epi32(mi, gt, idx);
    idx = _mm512_add_epi32(idx, _mm512_set1_epi32(16));
  }
  alignas(64) float mv[16];
  alignas(64) int32_t iv[16];
  _mm512_store_ps(mv, mx);
  _mm512_store_si512(iv, mi);
  float best = mv[0];
  int64_t bi = mv[0] > -INFINITY ? iv[0] : 0;
  for (int j = 1; j < 16; ++j)
    if (mv[j] > best || (mv[j] == best && iv[j] < bi)) best = mv[j], bi = iv[j];
  *argmax = bi;
  return best;
}

__attribute__((target("avx512f"))) void exp_sums512(const float* x, int64_t n, float m, float* e, float* sum,
                                                    float* sum_ex, float* block_sums, int64_t block) {
  const __m512 vm = _mm512_set1_ps(m);
  __m512 s = _mm512_setzero_ps(), a = _mm512_setzero_ps();
  for (int64_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
    __m512 bs = _mm512_setzero_ps();
    const int64_t b1 = std::min(n, b0 + block);
    for (int64_t i = b0; i < b1; i += 16) {
      const __mmask16 k = b1 - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (b1 - i)) - 1);
      const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm);
      const __m512 v = _mm512_maskz_mov_ps(k, exp512(d));
      _mm512_mask_storeu_ps(e + i, k, v);
      bs = _mm512_add_ps(bs, v);
      // 0 * (-inf) would be NaN: masked-off and zero-probability lanes add nothing.
      a = _mm512_add_ps(a, _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), v, d));
    }
    s = _mm512_add_ps(s, bs);
    alignas(64) float lane[kLanes];
    _mm512_store_ps(lane, bs);
    block_sums[bi] = reduce16(lane);
  }
  alignas(64) float lane[kLanes];
  _mm512_store_ps(lane, s);
  *sum = reduce16(lane);
  _mm512_store_ps(lane, a);
  *sum_ex = reduce16(lane);
}
// The AVX2 forms: the 16 lanes as two registers (elements i..i+7, i+8..i+15 of each 16), tails
// element by element into the same lanes, so every sum has the scalar definition's order.
__attribute__((target("avx2,fma"))) float scale_max_argmax256(float* x, int64_t n, float t, int64_t* argmax) {
  const __m256 tv = _mm256_set1_ps(t);
  __m256 mx = _mm256_set1_ps(-INFINITY);
  __m256i mi = _mm256_setzero_si256(), idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), tv);
    _mm256_storeu_ps(x + i, v);
    const __m256 gt = _mm256_cmp_ps(v, mx, _CMP_GT_OQ);  // strictly greater: first index wins
    mx = _mm256_blendv_ps(mx, v, gt);
    mi = _mm256_blendv_epi8(mi, idx, _mm256_castps_si256(gt));
    idx = _mm256_add_epi32(idx, _mm256_set1_epi32(8));
  }
  alignas(32) float mv[8];
  alignas(32) int32_t iv[8];
  _mm256_store_ps(mv, mx);
  _mm256_store_si256(reinterpret_cast<__m256i*>(iv), mi);
  float best = mv[0];
  int64_t bi = mv[0] > -INFINITY ? iv[0] : 0;
  for (int j = 1; j < 8; ++j)
    if (mv[j] > best || (mv[j] == best && iv[j] < bi)) best = mv[j], bi = iv[j];
  for (; i < n; ++i) {  // later indices: only a strictly greater value moves the argmax
    x[i] = x[i] / t;
    if (x[i] > best) best = x[i], bi = i;
  }
  *argmax = bi;
  return best;
}

__attribute__((target("avx2,fma"))) void exp_sums256(const float* x, int64_t n, float m, float* e, float* sum,
                                                     float* sum_ex, float* block_sums, int64_t block) {
  const __m256 vm = _mm256_set1_ps(m), zero = _mm256_setzero_ps();
  alignas(32) float s[kLanes] = {}, a[kLanes] = {};
  __m256 a0 = zero, a1 = zero;  // sum_ex lanes 0..7, 8..15 (the tails' go to a[] directly)
  for (int64_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
    const int64_t b1 = std::min(n, b0 + block);
    __m256 s0 = zero, s1 = zero;
    int64_t i = b0;
    for (; i + 16 <= b1; i += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
      const __m256 v0 = exp256(d0), v1 = exp256(d1);
      _mm256_storeu_ps(e + i, v0);
      _mm256_storeu_ps(e + i + 8, v1);
      s0 = _mm256_add_ps(s0, v0);
      s1 = _mm256_add_ps(s1, v1);
      // 0 * (-inf) would be NaN: zero-probability lanes add nothing.
      a0 = _mm256_add_ps(a0, _mm256_and_ps(_mm256_cmp_ps(v0, zero, _CMP_GT_OQ), _mm256_mul_ps(v0, d0)));
      a1 = _mm256_add_ps(a1, _mm256_and_ps(_mm256_cmp_ps(v1, zero, _CMP_GT_OQ), _mm256_mul_ps(v1, d1)));
    }
    alignas(32) float bs[kLanes];
    _mm256_store_ps(bs, s0);
    _mm256_store_ps(bs + 8, s1);
    if (i < b1) {  // the block's last partial 16 (only the row's last block: block is a multiple of 16)
      _mm256_store_ps(a, a0);
      _mm256_store_ps(a + 8, a1);
      for (; i < b1; ++i) {
        const float d = x[i] - m;
        e[i] = exp_vec_def(d);
        bs[(i - b0) % kLanes] += e[i];
        if (e[i] > 0.0f) a[(i - b0) % kLanes] += e[i] * d;
      }
      a0 = _mm256_load_ps(a);
      a1 = _mm256_load_ps(a + 8);
    }
    for (int j = 0; j < kLanes; ++j) s[j] += bs[j];
    block_sums[bi] = reduce16(bs);
  }
  _mm256_store_ps(a, a0);
  _mm256_store_ps(a + 8, a1);
  *sum = reduce16(s);
  *sum_ex = reduce16(a);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

// The scalar definitions (the same lane structure: element i goes to lane i % 16 of its block).
float scale_max_argmax_scalar(float* x, int64_t n, float t, int64_t* argmax) {
  float best = -INFINITY;
  int64_t bi = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = x[i] / t;
    if (x[i] > best) best = x[i], bi = i;
  }
  *argmax = bi;
  return best;
}

void exp_sums_scalar(const float* x, int64_t n, float m, float* e, float* sum, float* sum_ex, float* block_sums,
                     int64_t block) {
  float s[kLanes] = {}, a[kLanes] = {};
  for (int64_t b0 = 0, bi = 0; b0 < n; b0 += block, ++bi) {
    float bs[kLanes] = {};
    for (int64_t i = b0; i < std::min(n, b0 + block); ++i) {
      const float d = x[i] - m;
      e[i] = exp_vec_def(d);
      bs[(i - b0) % kLanes] += e[i];
      if (e[i] > 0.0f) a[(i - b0) % kLanes] += e[i] * d;
    }
    for (int j = 0; j < kLanes; ++j) s[j] += bs[j];
    block_sums[bi] = reduce16(bs);
  }
  *sum = reduce16(s);
  *sum_ex = reduce16(a);
}

}  // namespace

float exp_vec_def(float x) {
  if (!(x >= kLo)) return 0.0f;  // below the smallest normal result (and -inf, NaN)
  x = std::fmin(x, kHi);
  const float n = std::nearbyint(x * kLog2e);
  float r = std::fma(n, -kLn2Hi, x);
  r = std::fma(n, -kLn2Lo, r);
  const float z = r * r;
  float p = kP0;
  p = std::fma(p, r, kP1);
  p = std::fma(p, r, kP2);
  p = std::fma(p, r, kP3);
  p = std::fma(p, r, kP4);
  p = std::fma(p, r, kP5);
  float y = std::fma(p, z, r);
  y = y + 1.0f;
  return y * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
}

void gelu_mul_fast(const float* gate, const float* up, float* out, int64_t n) {
#ifdef DG_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAVX512) return gelu512(gate, up, out, n);
  if (isa != Isa::kScalar) return gelu256(gate, up, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float x = gate[i];
    const float s = kBeta * (x + kKappa * ((x * x) * x));
    out[i] = (x / (1.0f + exp_vec_def(s * -2.0f))) * up[i];
  }
}

void softcap_fast(float* x, int64_t n, float cap) {
#ifdef DG_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAVX512) return softcap512(x, n, cap);
  if (isa != Isa::kScalar) return softcap256(x, n, cap);
#endif
  for (int64_t i = 0; i < n; ++i) {
    const float y = std::fmin(std::fmax(x[i] / cap, -kTanhClamp), kTanhClamp);
    x[i] = (1.0f - 2.0f / (exp_vec_def(y * 2.0f) + 1.0f)) * cap;
  }
}

float scale_max_argmax(float* x, int64_t n, float t, int64_t* argmax) {
#ifdef DG_X86
  if (active_isa() >= Isa::kAVX512) return scale_max_argmax512(x, n, t, argmax);
  if (active_isa() != Isa::kScalar) return scale_max_argmax256(x, n, t, argmax);
#endif
  return scale_max_argmax_scalar(x, n, t, argmax);
}

void exp_sums(const float* x, int64_t n, float m, float* e, float* sum, float* sum_ex, float* block_sums,
              int64_t block) {
#ifdef DG_X86
  if (active_isa() >= Isa::kAVX512) return exp_sums512(x, n, m, e, sum, sum_ex, block_sums, block);
  if (active_isa() != Isa::kScalar) return exp_sums256(x, n, m, e, sum, sum_ex, block_sums, block);
#endif
  exp_sums_scalar(x, n, m, e, sum, sum_ex, block_sums, block);
}

void softmax_fast(const float* src, float* dst, int64_t n) {
  if (n <= 0) return;
#ifdef DG_X86
  const Isa isa = active_isa();
  if (isa >= Isa::kAVX512) return softmax512(src, dst, n);
  if (isa != Isa::kScalar) return softmax256(src, dst, n);
#endif
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, src[i]);
  float lane[kLanes] = {};
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = exp_vec_def(src[i] - mx);
    lane[i % kLanes] += dst[i];
  }
  const float inv = 1.0f / reduce16(lane);
  for (int64_t i = 0; i < n; ++i) dst[i] *= inv;
}

}  // namespace dg

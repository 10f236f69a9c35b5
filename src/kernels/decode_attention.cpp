// Why by hand: the plain loops sum each score's 32 lanes one after another (GCC's reduction of an
// `omp simd` loop: a chain of 32 dependent scalar additions per key) and keep the output row in
// memory across keys; at T5's 256 generated tokens that made the attention a third of a
// decoding step. Here the lanes of 16 keys are transposed so that one vector addition adds lane l
// of all 16 keys (the same additions in the same order), and the output row stays in registers.
//
// bf16 → f32 is a 16-bit shift. A 32-bit lane of a raw load holds values 2i (low half) and 2i + 1
// (high half): `<< 16` widens the even values, `& 0xFFFF0000` the odd ones, one operation per 16
// values. Lanes then hold values in even/odd order, and q is loaded in the same order, so that
// every lane still multiplies and sums exactly the values the plain loops do.
#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/half.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LORAHUB_ATTN_TARGET __attribute__((target("avx512f,avx512bw,avx512dq")))
#endif

namespace lorahub {

void dot_rows_bf16_reference(const float* q, const uint16_t* k, int64_t stride, int64_t count,
                             int64_t head_dim, float* out) {
  check(head_dim % 32 == 0, "dot_rows_bf16: head_dim {} is not a multiple of 32", head_dim);
  for (int64_t j = 0; j < count; ++j) {
    const uint16_t* kj = k + j * stride;
    float lanes[32];
    for (int l = 0; l < 32; ++l) {
      float acc = 0.0f;
      for (int64_t c = l; c < head_dim; c += 32) acc = std::fma(bf16_to_f32(kj[c]), q[c], acc);
      lanes[l] = acc;
    }
    float dot = 0.0f;
    for (float lane : lanes) dot += lane;
    out[j] = dot;
  }
}

void weighted_sum_bf16_reference(const float* p, const uint16_t* v, int64_t stride, int64_t count,
                                 int64_t head_dim, float* out) {
  std::fill_n(out, head_dim, 0.0f);
  for (int64_t j = 0; j < count; ++j) {
    if (p[j] == 0.0f) continue;
    for (int64_t c = 0; c < head_dim; ++c)
      out[c] = std::fma(p[j], bf16_to_f32(v[j * stride + c]), out[c]);
  }
}

#ifdef LORAHUB_ATTN_TARGET
namespace {

constexpr int kMaxChunks = 8;  // head_dim / 32 ≤ 8
// Full masks: the unmasked forms trip GCC 12's -Wmaybe-uninitialized (their _mm512_undefined).
constexpr __mmask16 kAll = 0xFFFF;

LORAHUB_ATTN_TARGET inline __m512 even_values(__m512i raw) {
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, raw, 16));
}
LORAHUB_ATTN_TARGET inline __m512 odd_values(__m512i raw) {
  return _mm512_castsi512_ps(
      _mm512_and_si512(raw, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}

// r[l] becomes lane l of the 16 inputs: r[l][j] = in[j][l].
LORAHUB_ATTN_TARGET inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_maskz_unpacklo_ps(kAll, r[i], r[i + 1]);
    t[i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[i], r[i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_maskz_shuffle_ps(kAll, t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_maskz_shuffle_ps(kAll, t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_maskz_shuffle_ps(kAll, t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_maskz_shuffle_ps(kAll, t[i + 1], t[i + 3], 0xEE);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 16; i += 8) {
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      t[i + c] = _mm512_maskz_shuffle_f32x4(kAll, r[i + c], r[i + c + 4], 0x88);
      t[i + c + 4] = _mm512_maskz_shuffle_f32x4(kAll, r[i + c], r[i + c + 4], 0xDD);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < 8; ++c) {
    r[c] = _mm512_maskz_shuffle_f32x4(kAll, t[c], t[c + 8], 0x88);
    r[c + 8] = _mm512_maskz_shuffle_f32x4(kAll, t[c], t[c + 8], 0xDD);
  }
}

// Lanes of `half` (0: even values, 1: odd) for up to 16 keys: acc[j] lane i = Σ_t k_j[32t + 2i +
// half] · q[...], in t order.
template <int Half>
LORAHUB_ATTN_TARGET inline void half_lanes(const __m512* qh, const uint16_t* k, int64_t stride,
                                           int n, int chunks, __m512 (&acc)[16]) {
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) {
    acc[j] = _mm512_setzero_ps();
    if (j >= n) continue;
    const uint16_t* kj = k + j * stride;
    for (int t = 0; t < chunks; ++t) {
      const __m512i raw = _mm512_loadu_si512(kj + 32 * t);
      acc[j] = _mm512_fmadd_ps(Half == 0 ? even_values(raw) : odd_values(raw), qh[t], acc[j]);
    }
  }
}

}  // namespace

bool decode_attention_bf16_available(int64_t head_dim) {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512dq");
  return cpu && head_dim > 0 && head_dim % 32 == 0 && head_dim / 32 <= kMaxChunks;
}

LORAHUB_ATTN_TARGET void dot_rows_bf16(const float* q, const uint16_t* k, int64_t stride,
                                       int64_t count, int64_t head_dim, float* out) {
  check(decode_attention_bf16_available(head_dim), "dot_rows_bf16: no kernel for head_dim {}",
        head_dim);
  const int chunks = static_cast<int>(head_dim / 32);
  // q's values 2i and 2i + 1 of each 32, as the keys' lanes hold them.
  const __m512i even_idx =
      _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd_idx = _mm512_add_epi32(even_idx, _mm512_set1_epi32(1));
  __m512 qe[kMaxChunks], qo[kMaxChunks];
  for (int t = 0; t < chunks; ++t) {
    const __m512 lo = _mm512_loadu_ps(q + 32 * t), hi = _mm512_loadu_ps(q + 32 * t + 16);
    qe[t] = _mm512_permutex2var_ps(lo, even_idx, hi);
    qo[t] = _mm512_permutex2var_ps(lo, odd_idx, hi);
  }
  for (int64_t j0 = 0; j0 < count; j0 += 16) {
    const int n = static_cast<int>(std::min<int64_t>(16, count - j0));
    const uint16_t* kb = k + j0 * stride;
    __m512 even[16], odd[16];
    half_lanes<0>(qe, kb, stride, n, chunks, even);
    transpose16(even);  // even[i] lane j: key j's lane 2i
    half_lanes<1>(qo, kb, stride, n, chunks, odd);
    transpose16(odd);  // odd[i] lane j: key j's lane 2i + 1
    __m512 sum = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {  // lanes 0, 1, 2, ... of every key, in that order
      sum = _mm512_add_ps(sum, even[i]);
      sum = _mm512_add_ps(sum, odd[i]);
    }
    _mm512_mask_storeu_ps(out + j0, static_cast<__mmask16>((1u << n) - 1), sum);
  }
}

LORAHUB_ATTN_TARGET void weighted_sum_bf16(const float* p, const uint16_t* v, int64_t stride,
                                           int64_t count, int64_t head_dim, float* out) {
  check(decode_attention_bf16_available(head_dim), "weighted_sum_bf16: no kernel for head_dim {}",
        head_dim);
  const int chunks = static_cast<int>(head_dim / 32);
  __m512 even[kMaxChunks], odd[kMaxChunks];  // out's values 2i and 2i + 1 of each 32
  for (int t = 0; t < chunks; ++t) even[t] = odd[t] = _mm512_setzero_ps();
  for (int64_t j = 0; j < count; ++j) {
    if (p[j] == 0.0f) continue;  // masked keys (exp(-inf)) add nothing
    const __m512 pj = _mm512_set1_ps(p[j]);
    const uint16_t* vj = v + j * stride;
    for (int t = 0; t < chunks; ++t) {
      const __m512i raw = _mm512_loadu_si512(vj + 32 * t);
      even[t] = _mm512_fmadd_ps(pj, even_values(raw), even[t]);
      odd[t] = _mm512_fmadd_ps(pj, odd_values(raw), odd[t]);
    }
  }
  const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
  for (int t = 0; t < chunks; ++t) {  // back to natural order: value 2i from even lane i
    _mm512_storeu_ps(out + 32 * t, _mm512_permutex2var_ps(even[t], lo_idx, odd[t]));
    _mm512_storeu_ps(out + 32 * t + 16, _mm512_permutex2var_ps(even[t], hi_idx, odd[t]));
  }
}

#else

bool decode_attention_bf16_available(int64_t) {
  return false;
}
void dot_rows_bf16(const float*, const uint16_t*, int64_t, int64_t, int64_t, float*) {
  fail("dot_rows_bf16: AVX-512 kernels need an x86-64 build");
}
void weighted_sum_bf16(const float*, const uint16_t*, int64_t, int64_t, int64_t, float*) {
  fail("weighted_sum_bf16: AVX-512 kernels need an x86-64 build");
}

#endif

}  // namespace lorahub

// Quantized products (kernels/quant_matmul.h): activation quantization, the per-format unpacking
// of weight rows, and the integer dot products, scalar (the reference) and AVX512-VNNI (chosen at
// run time: the build may target a CPU without it).
#include "kernels/quant_matmul.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include <omp.h>

#include "core/error.h"
#include "core/half.h"
#include "kernels/matmul.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define LORAHUB_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))
#endif

namespace lorahub {

namespace {

constexpr int64_t kChunk = 64;     // values per vector step; rows are padded to it with zeros
constexpr int kRowBlock = 4;       // rows of A per register block
constexpr int kColBlock = 2;       // weight rows per register block
constexpr int64_t kRowTile = 128;  // rows of A whose quantized copy stays in L2 per pass
constexpr int64_t kParallelMin = 1 << 15;          // below this many weight values one thread wins
constexpr int64_t kTileValues = int64_t{1} << 17;  // f32 weight values per tile (512 KB, L2)
constexpr int64_t kBf16TileValues = int64_t{1} << 20;  // bf16 values per tile (2 MB)

int64_t padded(int64_t k) {
  return (k + kChunk - 1) / kChunk * kChunk;
}

struct FormatInfo {
  const char* name;
  int64_t values, bytes;  // per block (I8: one value, one byte; its scale lies beside)
  bool offsets;           // x = s·q + m per 32 values
};

const FormatInfo& info(QuantFormat f) {
  static const FormatInfo table[] = {
      {"Q4_0", 32, 18, false},  {"Q4_1", 32, 20, true},    {"Q5_0", 32, 22, false},
      {"Q5_1", 32, 24, true},   {"Q8_0", 32, 34, false},   {"Q4_K", 256, 144, true},
      {"Q5_K", 256, 176, true}, {"Q6_K", 256, 210, false}, {"Q8_K", 256, 292, false},
      {"I8", 1, 1, false},
  };
  return table[static_cast<int>(f)];
}

BlockFormat block_format_of(QuantFormat f) {
  switch (f) {
    case QuantFormat::Q4_0:
      return BlockFormat::Q4_0;
    case QuantFormat::Q4_1:
      return BlockFormat::Q4_1;
    case QuantFormat::Q5_0:
      return BlockFormat::Q5_0;
    case QuantFormat::Q5_1:
      return BlockFormat::Q5_1;
    case QuantFormat::Q8_0:
      return BlockFormat::Q8_0;
    case QuantFormat::Q4_K:
      return BlockFormat::Q4_K;
    case QuantFormat::Q5_K:
      return BlockFormat::Q5_K;
    case QuantFormat::Q6_K:
      return BlockFormat::Q6_K;
    case QuantFormat::Q8_K:
      return BlockFormat::Q8_K;
    case QuantFormat::I8:
      break;
  }
  fail("quantized matrix: I8 is not a GGUF block format");
}

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// ------------------------------------------------------------------ weight rows, unpacked
// One weight row as the products use it: q[i] small signed integers, s4[i / 4] the scale of
// values i..i+3, m32[i / 32] the offset of each 32 values (formats with a minimum).

void fill_scale(float* s4, int64_t values, float s) {
  std::fill_n(s4, values / 4, s);
}

// Legacy formats (32 values): q = nibble (| fifth bit) − zero point, scale d, offset m.
void unpack_legacy(const uint8_t* b, int header, bool fifth_bit, int zero, int8_t* q) {
  uint32_t qh = 0;
  if (fifth_bit) std::memcpy(&qh, b + header - 4, 4);
  const uint8_t* qs = b + header;
  for (int j = 0; j < 16; ++j) {  // spelled out per half (not nibble32) so that it vectorizes
    q[j] = static_cast<int8_t>(((qs[j] & 0xf) | ((qh >> j & 1) << 4)) - zero);
    q[j + 16] = static_cast<int8_t>(((qs[j] >> 4) | ((qh >> (j + 16) & 1) << 4)) - zero);
  }
}

void unpack_block(QuantFormat f, const uint8_t* b, int8_t* q, float* s4, float* m32) {
  switch (f) {
    case QuantFormat::Q4_0:  // f16 d | 16 B nibbles: x = d·(q − 8)
      unpack_legacy(b, 2, false, 8, q);
      return fill_scale(s4, 32, f16_at(b));
    case QuantFormat::Q4_1:  // f16 d | f16 m | 16 B nibbles: x = d·q + m
      unpack_legacy(b, 4, false, 0, q);
      m32[0] = f16_at(b + 2);
      return fill_scale(s4, 32, f16_at(b));
    case QuantFormat::Q5_0:  // f16 d | u32 qh | nibbles: x = d·(q − 16)
      unpack_legacy(b, 6, true, 16, q);
      return fill_scale(s4, 32, f16_at(b));
    case QuantFormat::Q5_1:  // f16 d | f16 m | u32 qh | nibbles: x = d·q + m
      unpack_legacy(b, 8, true, 0, q);
      m32[0] = f16_at(b + 2);
      return fill_scale(s4, 32, f16_at(b));
    case QuantFormat::Q8_0:  // f16 d | 32 × int8
      std::memcpy(q, b + 2, 32);
      return fill_scale(s4, 32, f16_at(b));
    case QuantFormat::Q4_K:
    case QuantFormat::Q5_K: {  // sub-block g of 32: x = (d·sc[g])·q − dmin·mn[g]
      const float d = f16_at(b), dmin = f16_at(b + 2);
      uint8_t sc[8], mn[8];
      scale_min_k4(b + 4, sc, mn);
      const bool five = f == QuantFormat::Q5_K;
      const uint8_t* qh = b + 16;
      const uint8_t* qs = five ? b + 48 : b + 16;
      for (int g = 0; g < 8; ++g) {
        const uint8_t* src = qs + 32 * (g / 2);
        const int shift = 4 * (g % 2);
        for (int l = 0; l < 32; ++l) {
          const int high = five ? ((qh[l] >> g) & 1) << 4 : 0;
          q[32 * g + l] = static_cast<int8_t>(((src[l] >> shift) & 0xf) | high);
        }
        fill_scale(s4 + 8 * g, 32, d * static_cast<float>(sc[g]));
        m32[g] = -(dmin * static_cast<float>(mn[g]));
      }
      return;
    }
    case QuantFormat::Q6_K: {  // x = (d·sc[i / 16])·(q − 32), q 6 bits from ql and qh
      const uint8_t* ql = b;
      const uint8_t* qh = b + 128;
      const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
      const float d = f16_at(b + 208);
      for (int h = 0; h < 2; ++h)
        for (int k = 0; k < 2; ++k)
          for (int l = 0; l < 64; ++l) {
            const int i = 128 * h + 64 * k + l;
            const int low = (ql[64 * h + l] >> (4 * k)) & 0xf;
            const int high = (qh[32 * h + l % 32] >> (2 * (2 * k + l / 32))) & 3;
            q[i] = static_cast<int8_t>((low | high << 4) - 32);
          }
      for (int s = 0; s < 16; ++s) fill_scale(s4 + 4 * s, 16, d * static_cast<float>(sc[s]));
      return;
    }
    case QuantFormat::Q8_K: {  // f32 d | 256 × int8 | 16 × int16 sums
      float d;
      std::memcpy(&d, b, 4);
      std::memcpy(q, b + 4, 256);
      return fill_scale(s4, 256, d);
    }
    case QuantFormat::I8:
      break;
  }
  fail("unpack_block: I8 rows have no blocks");
}

struct WeightRows {  // kColBlock unpacked rows, padded to kChunk with zeros
  int64_t kp = 0;
  std::vector<int8_t> q;
  std::vector<float> s4, m32;
  explicit WeightRows(int64_t k)
      : kp(padded(k)),
        q(static_cast<size_t>(kColBlock * kp)),
        s4(static_cast<size_t>(kColBlock * kp / 4)),
        m32(static_cast<size_t>(kColBlock * kp / 32)) {}
  int8_t* q_of(int j) { return q.data() + j * kp; }
  float* s4_of(int j) { return s4.data() + j * kp / 4; }
  float* m32_of(int j) { return m32.data() + j * kp / 32; }
};

void unpack_row(const QuantMatrix& b, int64_t row, WeightRows& w, int j) {
  int8_t* q = w.q_of(j);
  float* s4 = w.s4_of(j);
  const uint8_t* src = b.data.data() + row * b.row_bytes();
  const int64_t k = b.cols;
  if (b.format == QuantFormat::I8) {
    std::memcpy(q, src, static_cast<size_t>(k));
    std::fill_n(q + k, w.kp - k, int8_t{0});
    std::fill_n(s4, w.kp / 4, b.row_scale[static_cast<size_t>(row)]);  // pad: q is 0 there
    return;
  }
  const FormatInfo& f = info(b.format);
  float* m32 = w.m32_of(j);
  for (int64_t v = 0; v < k; v += f.values, src += f.bytes)
    unpack_block(b.format, src, q + v, s4 + v / 4, m32 + v / 32);
  std::fill_n(q + k, w.kp - k, int8_t{0});
  std::fill_n(s4 + k / 4, (w.kp - k) / 4, 0.0f);
  if (f.offsets) std::fill_n(m32 + k / 32, (w.kp - k) / 32, 0.0f);
}

// ------------------------------------------------------------------ activations, quantized
// Row i: u[kp] = q + 128, q = round(x / d) in [−127, 127], d per 32 values (as ggml's Q8_0
// activations); d4[kp / 4] the scale of each 4 values, sums[kp / 32] = d · Σq of each 32 (for
// the weights' offsets).
struct ActRows {
  int64_t kp = 0;
  std::vector<uint8_t> u;
  std::vector<float> d4, sums;
};

// q + 128 of values x[0..len) at 1/d = inv; returns Σq.
int quantize_run(const float* x, int64_t len, float inv, uint8_t* u) {
  int sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t t = 0; t < len; ++t) {
    const int q = static_cast<int>(std::nearbyint(x[t] * inv));
    u[t] = static_cast<uint8_t>(q + 128);
    sum += q;
  }
  return sum;
}

float abs_max(const float* x, int64_t len) {
  float amax = 0.0f;
#pragma omp simd reduction(max : amax)
  for (int64_t t = 0; t < len; ++t) amax = std::max(amax, std::fabs(x[t]));
  return amax;
}

void quantize_activations(const float* a, int64_t m, int64_t k, ActRows& x) {
  x.kp = padded(k);
  const int64_t kp = x.kp;
  x.u.assign(static_cast<size_t>(m * kp), uint8_t{128});
  x.d4.assign(static_cast<size_t>(m * kp / 4), 0.0f);
  x.sums.assign(static_cast<size_t>(m * kp / 32), 0.0f);
  for (int64_t i = 0; i < m; ++i) {
    const float* row = a + i * k;
    for (int64_t b0 = 0; b0 < k; b0 += 32) {
      const int64_t len = std::min<int64_t>(32, k - b0);
      const float amax = abs_max(row + b0, len);
      const float d = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      const int sum = quantize_run(row + b0, len, inv, x.u.data() + i * kp + b0);
      std::fill_n(x.d4.data() + (i * kp + b0) / 4, 8, d);
      x.sums[static_cast<size_t>((i * kp + b0) / 32)] = d * static_cast<float>(sum);
    }
  }
}

// Σ m32·sums over the row: the weights' offsets times the activations' block sums.
float offset_term(const float* m32, const float* sums, int64_t blocks) {
  float t = 0.0f;
  for (int64_t b = 0; b < blocks; ++b) t += m32[b] * sums[b];
  return t;
}

void store(float* out, float sum, float beta) {
  *out = beta == 0.0f ? sum : sum + beta * *out;
}

// ------------------------------------------------------------------ the dot products

// The reference: the integer sums of each 4 values, scaled, in f32.
void block_scalar(const ActRows& x, int64_t i0, int rows, WeightRows& w, int cols, bool offsets,
                  float* c, int64_t ldc, float beta) {
  const int64_t kp = x.kp;
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) {
      const uint8_t* u = x.u.data() + (i0 + i) * kp;
      const float* d4 = x.d4.data() + (i0 + i) * kp / 4;
      const int8_t* q = w.q_of(j);
      const float* s4 = w.s4_of(j);
      float sum = 0.0f;
      for (int64_t g = 0; g < kp / 4; ++g) {
        int32_t dot = 0;
        for (int t = 0; t < 4; ++t) dot += (int32_t{u[4 * g + t]} - 128) * q[4 * g + t];
        sum += static_cast<float>(dot) * (s4[g] * d4[g]);
      }
      if (offsets) sum += offset_term(w.m32_of(j), x.sums.data() + (i0 + i) * kp / 32, kp / 32);
      store(c + i * ldc + j, sum, beta);
    }
}

#ifdef LORAHUB_VNNI_TARGET
LORAHUB_VNNI_TARGET inline float lane_sum(__m512 v) {
  constexpr __mmask16 kAll = 0xFFFF;
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, 0b01001110));
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, 0b10110001));
  __m128 s = _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xF, v, 0);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Σ m32·sums, 16 blocks per step.
LORAHUB_VNNI_TARGET inline float offset_term_vnni(const float* m32, const float* sums,
                                                  int64_t blocks) {
  __m512 t = _mm512_setzero_ps();
  for (int64_t b = 0; b < blocks; b += 16) {
    const __mmask16 mask = blocks - b >= 16 ? 0xFFFF : (__mmask16(1) << (blocks - b)) - 1;
    t = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, m32 + b), _mm512_maskz_loadu_ps(mask, sums + b),
                        t);
  }
  return lane_sum(t);
}

// R rows of A against C weight rows, activations per block. vpdpbusd sums 4 products u·q per
// i32 lane; starting from −128·Σq of those 4 weights it yields Σ (u − 128)·q exactly.
template <int R, int C>
LORAHUB_VNNI_TARGET void block_vnni(const ActRows& x, int64_t i0, WeightRows& w, bool offsets,
                                    float* c, int64_t ldc, float beta) {
  const int64_t kp = x.kp;
  const __m512i k128 = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i zero = _mm512_setzero_si512();
  const uint8_t* u_row[R];
  const float* d_row[R];
  const int8_t* q_row[C];
  const float* s_row[C];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
    u_row[i] = x.u.data() + (i0 + i) * kp;
    d_row[i] = x.d4.data() + (i0 + i) * (kp / 4);
  }
#pragma GCC unroll 4
  for (int j = 0; j < C; ++j) q_row[j] = w.q_of(j), s_row[j] = w.s4_of(j);
  __m512 acc[R][C];
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k0 = 0, s0 = 0; k0 < kp; k0 += kChunk, s0 += kChunk / 4) {
    __m512i q[C], start[C];
    __m512 s[C];
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) {
      q[j] = _mm512_loadu_si512(q_row[j] + k0);
      start[j] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, k128, q[j]));
      s[j] = _mm512_loadu_ps(s_row[j] + s0);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const __m512i u = _mm512_loadu_si512(u_row[i] + k0);
      const __m512 d = _mm512_loadu_ps(d_row[i] + s0);
#pragma GCC unroll 4
      for (int j = 0; j < C; ++j) {
        const __m512 dot = _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_dpbusd_epi32(start[j], u, q[j]));
        acc[i][j] = _mm512_fmadd_ps(dot, _mm512_mul_ps(s[j], d), acc[i][j]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) {
      float sum = lane_sum(acc[i][j]);
      if (offsets)
        sum += offset_term_vnni(w.m32_of(j), x.sums.data() + (i0 + i) * (kp / 32), kp / 32);
      store(c + i * ldc + j, sum, beta);
    }
}

template <int C>
LORAHUB_VNNI_TARGET void rows_vnni(const ActRows& x, int64_t i0, int rows, WeightRows& w,
                                   bool offsets, float* c, int64_t ldc, float beta) {
  switch (rows) {
    case 4:
      return block_vnni<4, C>(x, i0, w, offsets, c, ldc, beta);
    case 3:
      return block_vnni<3, C>(x, i0, w, offsets, c, ldc, beta);
    case 2:
      return block_vnni<2, C>(x, i0, w, offsets, c, ldc, beta);
    default:
      return block_vnni<1, C>(x, i0, w, offsets, c, ldc, beta);
  }
}

void block_vnni_any(const ActRows& x, int64_t i0, int rows, WeightRows& w, int cols, bool offsets,
                    float* c, int64_t ldc, float beta) {
  if (cols == kColBlock)
    rows_vnni<kColBlock>(x, i0, rows, w, offsets, c, ldc, beta);
  else
    rows_vnni<1>(x, i0, rows, w, offsets, c, ldc, beta);
}
#endif

#ifdef LORAHUB_VNNI_TARGET
// ------------------------------------------------------------------ direct block kernels
// For few rows of A (decoding): each weight row is read in its GGUF blocks and decoded in
// registers 64 values at a time (ggml's vec_dot scheme), with no unpacked copy: per 64 values one
// vpdpbusd per row of A, a convert and an FMA with the lane scales (weight block scale × the
// activations' per-32 scale). The unsigned operand of vpdpbusd is the weights' raw quants (nibbles
// 0..15, Q6_K's 0..63); their zero point z (Q4_0: 8, Q6_K: 32) is subtracted exactly by starting
// each lane at −z·Σ of its 4 activation quants (start4, once per call). Signed weights (Q8_0, I8)
// take |w| as the unsigned operand and move the sign onto the activations. Formats with a minimum
// add m·d·Σq per 32 values as the unpacked kernels do. Same integers as the reference; f32
// summation order differs.
LORAHUB_VNNI_TARGET inline float f16_fast(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

struct Chunk {
  __m512i w;  // 64 weight quants, unsigned (or signed: Signed formats)
  __m512 s;   // the weight scale of each 4 values
  __m512 m;   // Q4_1: the weight minimum of each 4 values
};

// The f16 fields of two blocks (4 bytes each: d, or d and m), widened at once: [d0 (m0) d1 (m1)].
LORAHUB_VNNI_TARGET inline __m512 block_heads(const uint8_t* p0, const uint8_t* p1, bool two) {
  uint32_t h0, h1 = 0;
  std::memcpy(&h0, p0, 4);
  if (two) std::memcpy(&h1, p1, 4);
  const __m128i h = _mm_cvtsi64_si128(static_cast<int64_t>(uint64_t{h1} << 32 | h0));
  return _mm512_zextps128_ps512(_mm_cvtph_ps(h));
}

// Lanes 0-7 from field a of `heads`, lanes 8-15 from field b.
LORAHUB_VNNI_TARGET inline __m512 spread(__m512 heads, int a, int b) {
  return _mm512_maskz_permutexvar_ps(
      0xFFFF, _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(a), _mm512_set1_epi32(b)), heads);
}

// The activations as the direct kernels read them: x itself, and per 4 values the zero point's
// int32 start (formats with one) and d·Σq (formats with a minimum).
struct DirectActs {
  const ActRows& x;
  const int8_t* q;  // x.u − 128: the signed quants
  const int32_t* start4;
  const float* sums4;
  const float* k_pairs;  // K-quants: per 256 values, the 8 per-32 scales d, then their 8 d·Σq
};

LORAHUB_VNNI_TARGET inline __m512 two_scales(float s0, float s1) {
  return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

// Two 16-byte nibble runs (32 values each: low nibbles first) as 64 quants 0..15.
LORAHUB_VNNI_TARGET inline __m512i nibbles_2x16(__m128i a, __m128i b) {
  __m512i v = _mm512_zextsi128_si512(a);
  v = _mm512_inserti32x4(v, a, 1);
  v = _mm512_inserti32x4(v, b, 2);
  v = _mm512_inserti32x4(v, b, 3);
  v = _mm512_mask_srli_epi16(v, 0xFF00FF00u, v, 4);
  return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}

// One 32-byte nibble run as 64 quants: the low nibbles, then the high ones.
LORAHUB_VNNI_TARGET inline __m512i nibbles_32(const uint8_t* p) {
  __m512i v =
      _mm512_maskz_broadcast_i64x4(0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  v = _mm512_mask_srli_epi16(v, 0xFFFF0000u, v, 4);
  return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}

LORAHUB_VNNI_TARGET inline __m128i load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}

// Legacy formats: 64 values = blocks b and b + 1 (absent at an odd tail: zeros, scale 0).
template <QuantFormat F>
struct Legacy {
  static constexpr int64_t kBytes = F == QuantFormat::Q4_0 ? 18 : F == QuantFormat::Q4_1 ? 20 : 34;
  static constexpr int kZero = F == QuantFormat::Q4_0 ? 8 : 0;
  static constexpr bool kSigned = F == QuantFormat::Q8_0;
  static constexpr bool kOffsets = F == QuantFormat::Q4_1;
  LORAHUB_VNNI_TARGET static Chunk chunk(const uint8_t* p, bool two) {
    const uint8_t* p1 = p + kBytes;
    // Q4_0, Q8_0: [d0, -, d1, -] (the second field is the quants), Q4_1: [d0, m0, d1, m1].
    const __m512 heads = block_heads(p, p1, two);
    if constexpr (F == QuantFormat::Q8_0) {
      constexpr __mmask64 kLow = 0xFFFFFFFFull;
      __m512i w = _mm512_maskz_loadu_epi8(kLow, p + 2);
      if (two) w = _mm512_mask_loadu_epi8(w, ~kLow, p1 + 2 - 32);
      return {w, spread(heads, 0, 2), _mm512_setzero_ps()};
    } else {
      constexpr int head = F == QuantFormat::Q4_0 ? 2 : 4;
      const __m128i b = two ? load16(p1 + head) : _mm_setzero_si128();
      return {nibbles_2x16(load16(p + head), b), spread(heads, 0, 2),
              kOffsets ? spread(heads, 1, 3) : _mm512_setzero_ps()};
    }
  }
};

// What one weight chunk adds to R rows of A: acc[r] += s·d·Σ w·x per lane. `xq` holds the signed
// activation quants q of each row, `u` the same as q + 128. Unsigned weights (nibbles, Q6_K's
// 6 bits) are vpdpbusd's unsigned operand against q. Signed weights (Q8_0, I8) are its signed
// operand against u = q + 128: Σ u·w = Σ q·w + 128·Σ w, so each lane starts at −128·Σ of its 4
// weights, computed once per chunk for all R rows. Both give Σ q·w exactly.
template <int R, bool Signed>
LORAHUB_VNNI_TARGET inline void accumulate(const Chunk& ch, const uint8_t* const* u,
                                           const int8_t* const* xq, const float* const* d4,
                                           const int32_t* const* start, int64_t k0, __m512* acc) {
  __m512i base = _mm512_setzero_si512();
  if constexpr (Signed)
    base = _mm512_sub_epi32(base, _mm512_dpbusd_epi32(base, _mm512_set1_epi8(char(0x80)), ch.w));
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    __m512i dot;
    if constexpr (Signed) {
      dot = _mm512_dpbusd_epi32(base, _mm512_loadu_si512(u[r] + k0), ch.w);
    } else {
      const __m512i s0 = start ? _mm512_loadu_si512(start[r] + k0 / 4) : _mm512_setzero_si512();
      dot = _mm512_dpbusd_epi32(s0, ch.w, _mm512_loadu_si512(xq[r] + k0));
    }
    acc[r] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, dot),
                             _mm512_mul_ps(ch.s, _mm512_loadu_ps(d4[r] + k0 / 4)), acc[r]);
  }
}

// ---- K-quants: 256 values per super-block, its scales decoded once for all R rows.
// Per row and super-block one vector f of the activations' per-32 scales times the weights'
// sub-block scales (and Q4_K's minima times the activation sums); per 64 values one vpdpbusd, a
// permute of f to the lanes' sub-blocks, a convert and an FMA. Same integers as the reference.

// Q4_K's 12 bytes of 6-bit sub-block scales and minima as 16 bytes [sc0..7, mn0..7]: ggml's
// masks on 32-bit words, the same values as scale_min_k4 byte by byte. In vector lanes: built in
// general registers and stored as four words, the 16-byte reload of them missed store forwarding
// and stalled each Q4_K super-block (a third of the kernel's cycles at one row).
LORAHUB_VNNI_TARGET inline __m128i k4_scales_mins(const uint8_t* s) {
  const __m128i w = load16(s);  // words w0, w1, w2 (the 4 bytes after them unused)
  const __m128i low = _mm_shuffle_epi32(w, _MM_SHUFFLE(2, 1, 2, 0));   // w0, w2, w1, w2
  const __m128i high = _mm_shuffle_epi32(w, _MM_SHUFFLE(1, 1, 0, 0));  // w0, w0, w1, w1
  // [w0 & k6, w2 & k4, w1 & k6, (w2 >> 4) & k4]
  const __m128i lows =
      _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 0, 0, 4)),
                    _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  // lanes 1 and 3: ((w0 | w1) >> 6 & k2) << 4, the two high bits of sc4..7 and mn4..7
  const __m128i highs = _mm_and_si128(_mm_slli_epi32(_mm_srli_epi32(high, 6), 4),
                                      _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm_or_si128(lows, highs);
}

// Lane l of the result = lane idx[l] of v.
LORAHUB_VNNI_TARGET inline __m512 lanes_of(__m512 v, __m512i idx) {
  return _mm512_maskz_permutexvar_ps(0xFFFF, idx, v);
}

// Lanes 0-7 = a, lanes 8-15 = b (lane indices for lanes_of).
LORAHUB_VNNI_TARGET inline __m512i two_indices(int a, int b) {
  return _mm512_mask_blend_epi32(0xFF00, _mm512_set1_epi32(a), _mm512_set1_epi32(b));
}

LORAHUB_VNNI_TARGET inline __m512 to_float(__m512i v) {
  return _mm512_maskz_cvtepi32_ps(0xFFFF, v);
}

// R rows' pointers into the activations of the direct kernels.
template <int R>
struct KRows {
  const int8_t* q[R];
  const float* pairs[R];  // DirectActs::k_pairs of the row
  const int32_t* start[R];
};

// Q4_K super-block (f16 d, f16 dmin, 12 B scales, 128 B nibbles): x = d·sc[g]·q − dmin·mn[g].
template <int R>
LORAHUB_VNNI_TARGET inline void q4k_block(const uint8_t* b, const KRows<R>& x, int64_t k0,
                                          __m512* acc) {
  const __m512 scales =
      _mm512_mul_ps(to_float(_mm512_maskz_cvtepu8_epi32(0xFFFF, k4_scales_mins(b + 4))),
                    two_scales(f16_fast(b), -f16_fast(b + 2)));  // [d·sc0..7, −dmin·mn0..7]
  __m512i w[4];
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) w[c] = nibbles_32(b + 16 + 32 * c);  // sub-blocks 2c, 2c + 1
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    // [d·sc·xd, −dmin·mn·xd·Σq] per sub-block: the minima go to the upper lanes at once.
    const __m512 f = _mm512_mul_ps(scales, _mm512_loadu_ps(x.pairs[r] + k0 / 16));
    __m512 a = _mm512_mask_add_ps(acc[r], 0xFF00, acc[r], f);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[c],
                                              _mm512_loadu_si512(x.q[r] + k0 + 64 * c));
      a = _mm512_fmadd_ps(to_float(dot), lanes_of(f, two_indices(2 * c, 2 * c + 1)), a);
    }
    acc[r] = a;
  }
}

// Q6_K super-block (128 B low nibbles, 64 B high bit pairs, 16 int8 scales, f16 d):
// x = d·sc[i / 16]·(q − 32); the zero point through start4 as in the other kernels.
template <int R>
LORAHUB_VNNI_TARGET inline void q6k_block(const uint8_t* b, const KRows<R>& x, int64_t k0,
                                          __m512* acc) {
  const __m512 scales = _mm512_mul_ps(to_float(_mm512_maskz_cvtepi8_epi32(0xFFFF, load16(b + 192))),
                                      _mm512_set1_ps(f16_fast(b + 208)));
  const __m512i low4 = _mm512_set1_epi8(0x0F), low2 = _mm512_set1_epi8(0x03);
  __m512i w[4];  // values 64c..64c+63: sub-blocks 4c..4c+3
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m512i ql = _mm512_loadu_si512(b + 64 * h);
    const __m512i qh = _mm512_maskz_broadcast_i64x4(
        0xFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h)));
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {  // low or high nibbles of these 128 values
      const __m512i lo =
          _mm512_and_si512(_mm512_maskz_srli_epi16(~__mmask32{0}, ql, 4 * half), low4);
      // qh bits 4·half (first 32 values) and 4·half + 2 (next 32).
      const __m512i counts = _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16(4 * half),
                                                     _mm512_set1_epi16(4 * half + 2));
      const __m512i hi = _mm512_and_si512(_mm512_maskz_srlv_epi16(~__mmask32{0}, qh, counts), low2);
      w[2 * h + half] = _mm512_or_si512(lo, _mm512_maskz_slli_epi16(~__mmask32{0}, hi, 4));
    }
  }
  // Sub-block s (16 values) lies in activation block s / 2.
  const __m512i pair_of_sub = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m512 f =
        _mm512_mul_ps(scales, lanes_of(_mm512_loadu_ps(x.pairs[r] + k0 / 16), pair_of_sub));
    __m512 a = acc[r];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {  // lane j holds values 4j..4j+3: sub-block 4c + j / 4
      const __m512i sub =
          _mm512_add_epi32(_mm512_set1_epi32(4 * c),
                           _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0));
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(x.start[r] + (k0 + 64 * c) / 4),
                                              w[c], _mm512_loadu_si512(x.q[r] + k0 + 64 * c));
      a = _mm512_fmadd_ps(to_float(dot), lanes_of(f, sub), a);
    }
    acc[r] = a;
  }
}

// One weight row of a K-quant against rows i0..i0+R of A (row_scale: I8's, unused here).
template <QuantFormat F, int R>
LORAHUB_VNNI_TARGET void kquant_row(const uint8_t* row, int64_t k, float row_scale,
                                    const DirectActs& acts, int64_t i0, float* sum) {
  const int64_t kp = acts.x.kp;
  KRows<R> x;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    x.q[r] = acts.q + (i0 + r) * kp;
    x.pairs[r] = acts.k_pairs + (i0 + r) * (kp / 16);
    x.start[r] = acts.start4 ? acts.start4 + (i0 + r) * (kp / 4) : nullptr;
  }
  __m512 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  constexpr int64_t kBytes = F == QuantFormat::Q4_K ? 144 : 210;
  for (int64_t k0 = 0; k0 < k; k0 += 256, row += kBytes) {
    if constexpr (F == QuantFormat::Q4_K)
      q4k_block<R>(row, x, k0, acc);
    else
      q6k_block<R>(row, x, k0, acc);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) sum[r] = lane_sum(acc[r]);
}

// One weight row against rows i0..i0+R of A: the sums, before the minimum offsets.
template <QuantFormat F, int R>
LORAHUB_VNNI_TARGET void direct_row(const uint8_t* row, int64_t k, float row_scale,
                                    const DirectActs& acts, int64_t i0, float* sum) {
  const ActRows& x = acts.x;
  const int32_t* start4 = acts.start4;
  const int64_t kp = x.kp;
  const uint8_t* u[R];
  const int8_t* xq[R];
  const float* d4[R];
  const float* sums4[R];
  const int32_t* st[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    u[r] = x.u.data() + (i0 + r) * kp;
    xq[r] = acts.q + (i0 + r) * kp;
    d4[r] = x.d4.data() + (i0 + r) * (kp / 4);
    sums4[r] = acts.sums4 ? acts.sums4 + (i0 + r) * (kp / 4) : nullptr;
    st[r] = start4 ? start4 + (i0 + r) * (kp / 4) : nullptr;
  }
  const int32_t* const* start = start4 ? st : nullptr;
  __m512 acc[R], acc_m[R];  // acc_m: Q4_1's minima times the activation sums
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = acc_m[r] = _mm512_setzero_ps();
  if constexpr (F == QuantFormat::I8) {
    const __m512 s = _mm512_set1_ps(row_scale);
    for (int64_t k0 = 0; k0 < k; k0 += kChunk) {
      const __mmask64 live = k - k0 >= kChunk ? ~__mmask64{0} : (__mmask64{1} << (k - k0)) - 1;
      accumulate<R, true>({_mm512_maskz_loadu_epi8(live, row + k0), s, _mm512_setzero_ps()}, u, xq,
                          d4, nullptr, k0, acc);
    }
  } else {
    using L = Legacy<F>;
    const int64_t blocks = k / 32;
    for (int64_t b = 0; b < blocks; b += 2, row += 2 * L::kBytes) {
      const bool two = b + 1 < blocks;
      const Chunk ch = L::chunk(row, two);
      accumulate<R, L::kSigned>(ch, u, xq, d4, L::kZero ? start : nullptr, 32 * b, acc);
      if constexpr (L::kOffsets) {
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
          acc_m[r] = _mm512_fmadd_ps(ch.m, _mm512_loadu_ps(sums4[r] + 8 * b), acc_m[r]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) sum[r] = lane_sum(_mm512_add_ps(acc[r], acc_m[r]));
}

// Q4_1 in groups of 4 blocks (128 values, 80 bytes), for CPUs with AVX512-VBMI: the per-64
// kernel above spends ~25 operations per 2 blocks on inserts, permutes and scales, which made
// Q4_1 compute bound at batch 1 (~9 GB/s of weights per core from L2, below the memory stream).
// Here one vpermt2b gathers the 4 blocks' 64 nibble bytes, one vpermw their 4 (d, m) heads as
// per-lane f16 (lane l: block l / 4), and the activations are laid out once per call to match:
// per group, the low-nibble values (0..15 of each block) then the high ones (16..31). Each int32
// lane then sums the 8 products of its block's values {4l'..4l'+3, 16 + 4l'..} exactly (the same
// integers as the reference, summed 8 at a time before scaling: the f32 order differs). The
// minimum's share m·d·Σq of each block rides in the lane 4·(l / 4) of a per-lane activation
// term (zero in the other three).
constexpr int64_t kGroupValues = 128, kGroupBytes = 80;

struct GroupedActs {  // per row of A, per group: 128 quants, 16 lane scales, 16 lane sums
  int64_t groups = 0;
  std::vector<int8_t> q;
  std::vector<float> d, s;
};

void group_activations(const ActRows& x, int64_t m, int64_t k, GroupedActs& g) {
  g.groups = (k + kGroupValues - 1) / kGroupValues;
  const int64_t lanes = g.groups * 16, blocks = k / 32;
  g.q.assign(static_cast<size_t>(m * g.groups * kGroupValues), 0);
  g.d.assign(static_cast<size_t>(m * lanes), 0.0f);
  g.s.assign(static_cast<size_t>(m * lanes), 0.0f);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t b = 0; b < blocks; ++b) {
      const uint8_t* u = x.u.data() + i * x.kp + 32 * b;
      int8_t* q = g.q.data() + (i * g.groups + b / 4) * kGroupValues + 16 * (b % 4);
      for (int t = 0; t < 16; ++t) {
        q[t] = static_cast<int8_t>(int32_t{u[t]} - 128);
        q[t + 64] = static_cast<int8_t>(int32_t{u[t + 16]} - 128);
      }
      const int64_t lane = i * lanes + 4 * b;
      std::fill_n(g.d.data() + lane, 4, x.d4[static_cast<size_t>((i * x.kp + 32 * b) / 4)]);
      g.s[static_cast<size_t>(lane)] = x.sums[static_cast<size_t>((i * x.kp + 32 * b) / 32)];
    }
}

#define LORAHUB_VBMI_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi,f16c")))

struct Q41Group {  // one group of 4 blocks, decoded
  __m512i lo, hi;  // quants of values 0..15 / 16..31 of each block
  __m512 d, m;     // lane l: block l / 4's scale and minimum
};

LORAHUB_VBMI_TARGET inline Q41Group decode_q4_1_group(__m512i w0, __m512i w1) {
  // Byte 16j + t of the gathered quants is byte 20j + 4 + t of the group (index bit 6: w1).
  alignas(64) static constexpr auto kQs = [] {
    std::array<uint8_t, 64> idx{};
    for (int j = 0; j < 4; ++j)
      for (int t = 0; t < 16; ++t) idx[16 * j + t] = static_cast<uint8_t>(20 * j + 4 + t);
    return idx;
  }();
  // Word l: block l / 4's d (word 10·(l / 4)); word 16 + l: its m. All lie in w0.
  alignas(64) static constexpr auto kHeads = [] {
    std::array<uint16_t, 32> idx{};
    for (int l = 0; l < 16; ++l) {
      idx[l] = static_cast<uint16_t>(10 * (l / 4));
      idx[16 + l] = static_cast<uint16_t>(10 * (l / 4) + 1);
    }
    return idx;
  }();
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i qs = _mm512_permutex2var_epi8(w0, _mm512_load_si512(kQs.data()), w1);
  const __m512i heads =
      _mm512_maskz_permutexvar_epi16(~__mmask32{0}, _mm512_load_si512(kHeads.data()), w0);
  return {_mm512_and_si512(qs, low4),
          _mm512_and_si512(_mm512_maskz_srli_epi16(~__mmask32{0}, qs, 4), low4),
          _mm512_maskz_cvtph_ps(0xFFFF, _mm512_maskz_extracti64x4_epi64(0xFF, heads, 0)),
          _mm512_maskz_cvtph_ps(0xFFFF, _mm512_maskz_extracti64x4_epi64(0xFF, heads, 1))};
}

// R rows of A against C weight rows (row_bytes apart): sum[r·C + c]. Two accumulators per
// output (products, minima) keep the FMA chains short at one row.
template <int R, int C>
LORAHUB_VBMI_TARGET void q4_1_grouped(const uint8_t* row, int64_t row_bytes, int64_t blocks,
                                      const GroupedActs& g, int64_t i0, float* sum) {
  const int64_t lanes = g.groups * 16, full = blocks / 4;
  __m512 acc[R][C], acc_m[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = acc_m[r][c] = _mm512_setzero_ps();
  auto add_group = [&](int64_t gi, const Q41Group* w) LORAHUB_VBMI_TARGET {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const int8_t* xq = g.q.data() + ((i0 + r) * g.groups + gi) * kGroupValues;
      const __m512i xlo = _mm512_loadu_si512(xq), xhi = _mm512_loadu_si512(xq + 64);
      const int64_t lane = (i0 + r) * lanes + 16 * gi;
      const __m512 dx = _mm512_loadu_ps(g.d.data() + lane), sx = _mm512_loadu_ps(g.s.data() + lane);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) {
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[c].lo, xlo);
        dot = _mm512_dpbusd_epi32(dot, w[c].hi, xhi);
        acc[r][c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, dot),
                                    _mm512_mul_ps(w[c].d, dx), acc[r][c]);
        acc_m[r][c] = _mm512_fmadd_ps(w[c].m, sx, acc_m[r][c]);
      }
    }
  };
  Q41Group w[C];
  for (int64_t gi = 0; gi < full; ++gi) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const uint8_t* p = row + c * row_bytes + gi * kGroupBytes;
      w[c] = decode_q4_1_group(_mm512_loadu_si512(p), _mm512_maskz_loadu_epi8(0xFFFF, p + 64));
    }
    add_group(gi, w);
  }
  if (full < g.groups) {  // 1-3 blocks left (at most 60 bytes): never read past the row
    const __mmask64 live = (~__mmask64{0}) >> (64 - 20 * (blocks - 4 * full));
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c)
      w[c] =
          decode_q4_1_group(_mm512_maskz_loadu_epi8(live, row + c * row_bytes + full * kGroupBytes),
                            _mm512_setzero_si512());
    add_group(full, w);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) sum[r * C + c] = lane_sum(_mm512_add_ps(acc[r][c], acc_m[r][c]));
}

using GroupedKernel = void (*)(const uint8_t*, int64_t, int64_t, const GroupedActs&, int64_t,
                               float*);

// Weight rows per pass for R rows of A: more at few rows (independent chains, one reduction
// each), one at 5-8 rows (2·R accumulators already).
constexpr int grouped_cols(int rows) {
  return rows == 1 ? 4 : rows <= 4 ? 2 : 1;
}

template <int... R>
GroupedKernel grouped_kernel_of(int rows, bool one_col, std::integer_sequence<int, R...>) {
  GroupedKernel kernel = nullptr;
  ((rows == R + 1
        ? kernel = one_col ? q4_1_grouped<R + 1, 1> : q4_1_grouped<R + 1, grouped_cols(R + 1)>
        : kernel),
   ...);
  return kernel;
}

bool vbmi_available() {
  static const bool yes = quant_vnni_available() && __builtin_cpu_supports("avx512vbmi");
  return yes;
}

int direct_zero_point(QuantFormat f) {
  return f == QuantFormat::Q4_0 ? 8 : f == QuantFormat::Q6_K ? 32 : 0;
}

using DirectRow = void (*)(const uint8_t*, int64_t, float, const DirectActs&, int64_t, float*);

// Rows of A per pass over the weights: each weight chunk is loaded and decoded once for up to 8
// rows (16 accumulators with Q4_1's minima, of 32 registers).
constexpr int kDirectRows = 8;

constexpr bool is_k_quant(QuantFormat f) {
  return f == QuantFormat::Q4_K || f == QuantFormat::Q6_K;
}

template <QuantFormat F, int R>
DirectRow direct_row_kernel() {
  if constexpr (is_k_quant(F))
    return kquant_row<F, R>;
  else
    return direct_row<F, R>;
}

template <QuantFormat F, int... R>
DirectRow direct_row_of(int rows, std::integer_sequence<int, R...>) {
  DirectRow kernel = nullptr;
  ((rows == R + 1 ? kernel = direct_row_kernel<F, R + 1>() : kernel), ...);
  return kernel;
}

template <QuantFormat F>
DirectRow direct_row_for(int rows) {
  return direct_row_of<F>(rows, std::make_integer_sequence<int, kDirectRows>());
}

DirectRow direct_kernel(QuantFormat f, int rows) {
  switch (f) {
    case QuantFormat::Q4_0:
      return direct_row_for<QuantFormat::Q4_0>(rows);
    case QuantFormat::Q4_1:
      return direct_row_for<QuantFormat::Q4_1>(rows);
    case QuantFormat::Q8_0:
      return direct_row_for<QuantFormat::Q8_0>(rows);
    case QuantFormat::Q4_K:
      return direct_row_for<QuantFormat::Q4_K>(rows);
    case QuantFormat::Q6_K:
      return direct_row_for<QuantFormat::Q6_K>(rows);
    case QuantFormat::I8:
      return direct_row_for<QuantFormat::I8>(rows);
    default:
      return nullptr;
  }
}

// Per 4 activation values: −z·Σq (the zero point's share, exact in int32) and d·Σq.
void sums_of_four(const ActRows& x, int zero, std::vector<int32_t>& start4,
                  std::vector<float>& sums4) {
  start4.resize(x.u.size() / 4);
  sums4.resize(x.u.size() / 4);
  for (size_t g = 0; g < start4.size(); ++g) {
    int32_t s = 0;
    for (int t = 0; t < 4; ++t) s += int32_t{x.u[4 * g + t]} - 128;
    start4[g] = -zero * s;
    sums4[g] = x.d4[g] * static_cast<float>(s);
  }
}

// K-quants: per 256 activation values (kp is a multiple of 256) their 8 per-32 scales d, then
// their 8 d·Σq, so that one load gives a super-block's row of DirectActs::k_pairs.
void k_quant_pairs(const ActRows& x, std::vector<float>& pairs) {
  pairs.resize(x.u.size() / 16);
  for (size_t g = 0; g < x.u.size() / 256; ++g)
    for (size_t b = 0; b < 8; ++b) {
      pairs[16 * g + b] = x.d4[64 * g + 8 * b];
      pairs[16 * g + 8 + b] = x.sums[8 * g + b];
    }
}

// The weights stream from memory once per step (a decoding step's weights are larger than the
// cache): prefetching a weight row `distance` bytes ahead keeps more loads in flight than the
// hardware prefetcher does across short rows (bench_decode_quant, 1 thread, SmolLM2's step: CPU
// time 16-22 -> 12-16 ms on I8, 16-20 -> 11-14 ms on Q4_1; 2-16 KB ahead all alike).
constexpr int64_t kPrefetchBytes = 4096;

inline void prefetch_ahead(const uint8_t* row, int64_t row_bytes, int64_t distance,
                           const uint8_t* end) {
  const uint8_t* ahead = row + distance;
  const int64_t bytes = std::min<int64_t>(row_bytes, end - ahead);
  for (int64_t o = 0; o < bytes; o += 64)
    _mm_prefetch(reinterpret_cast<const char*>(ahead + o), _MM_HINT_T0);
}

// One product of the direct kernels, its activation layouts made (by the calling thread, in
// `DirectBuffers`, shared by the OpenMP threads) and its weight rows computed a range at a time
// by one thread (`direct_rows`): the parallel regions above split the rows, never the kernels.
struct DirectBuffers {
  GroupedActs grouped;  // Q4_1 through q4_1_grouped
  std::vector<int32_t> start;
  std::vector<float> sums;
  std::vector<int8_t> signed_q;
  std::vector<float> pairs;
};

struct DirectJob {
  const QuantMatrix* b = nullptr;
  float* c = nullptr;
  int64_t m = 0;
  float beta = 0.0f;
  const GroupedActs* grouped = nullptr;  // set: Q4_1 through q4_1_grouped
  std::optional<DirectActs> acts;        // the others
  DirectRow full = nullptr, tail = nullptr;
  int wide = 1;  // weight rows per pass (q4_1_grouped); a thread's range is cut at multiples
  int64_t bytes() const { return b->rows * b->row_bytes(); }
};

DirectJob prepare_direct(const ActRows& x, const QuantMatrix& b, float* c, int64_t m, float beta,
                         DirectBuffers& buf) {
  DirectJob job;
  job.b = &b;
  job.c = c;
  job.m = m;
  job.beta = beta;
  if (b.format == QuantFormat::Q4_1 && vbmi_available()) {
    group_activations(x, m, b.cols, buf.grouped);
    job.grouped = &buf.grouped;
    job.wide = m >= kDirectRows ? 1 : grouped_cols(static_cast<int>(m));
    return job;
  }
  const int zero = direct_zero_point(b.format);
  const bool offsets = info(b.format).offsets;
  const bool k_quant = is_k_quant(b.format);
  if (k_quant) k_quant_pairs(x, buf.pairs);
  // Q4_K's minima go through k_pairs; the zero points (Q4_0, Q6_K) through start4.
  if (zero != 0 || (offsets && !k_quant)) sums_of_four(x, zero, buf.start, buf.sums);
  if (b.format != QuantFormat::I8 && b.format != QuantFormat::Q8_0) {
    // unsigned weights multiply the signed quants
    buf.signed_q.resize(x.u.size());
    for (size_t t = 0; t < x.u.size(); ++t)
      buf.signed_q[t] = static_cast<int8_t>(int32_t{x.u[t]} - 128);
  }
  job.acts.emplace(DirectActs{x, buf.signed_q.data(), zero != 0 ? buf.start.data() : nullptr,
                              offsets && !k_quant ? buf.sums.data() : nullptr,
                              k_quant ? buf.pairs.data() : nullptr});
  job.full = direct_kernel(b.format, kDirectRows);
  job.tail = direct_kernel(b.format, static_cast<int>(m % kDirectRows));
  return job;
}

// Weight rows [j0, j1) of one product, on the calling thread. Each output is the same sum
// whichever rows share its pass, so where the threads' ranges are cut changes no number.
void direct_rows(const DirectJob& job, int64_t j0, int64_t j1) {
  const QuantMatrix& b = *job.b;
  const int64_t n = b.rows, k = b.cols, row_bytes = b.row_bytes(), m = job.m;
  // Prefetching stops at the range's end: the rows after it are another thread's.
  const uint8_t* end = b.data.data() + j1 * row_bytes;
  float sum[kDirectRows * 4];
  if (job.grouped != nullptr) {
    const auto seq = std::make_integer_sequence<int, kDirectRows>();
    for (int64_t j = j0; j < j1; j += job.wide) {
      const int cols = static_cast<int>(std::min<int64_t>(job.wide, j1 - j));
      const uint8_t* row = b.data.data() + j * row_bytes;
      prefetch_ahead(row, cols * row_bytes, kPrefetchBytes, end);
      for (int64_t i = 0; i < m; i += kDirectRows) {
        const int rows = static_cast<int>(std::min<int64_t>(kDirectRows, m - i));
        if (cols == grouped_cols(rows) || rows == kDirectRows) {
          grouped_kernel_of(rows, false, seq)(row, row_bytes, k / 32, *job.grouped, i, sum);
          for (int r = 0; r < rows; ++r)
            for (int t = 0; t < cols; ++t)
              store(job.c + (i + r) * n + j + t, sum[r * cols + t], job.beta);
          continue;
        }
        for (int t = 0; t < cols; ++t) {  // the last weight rows, one at a time
          grouped_kernel_of(rows, true, seq)(row + t * row_bytes, row_bytes, k / 32, *job.grouped,
                                             i, sum);
          for (int r = 0; r < rows; ++r) store(job.c + (i + r) * n + j + t, sum[r], job.beta);
        }
      }
    }
    return;
  }
  const bool i8 = b.format == QuantFormat::I8;
  for (int64_t j = j0; j < j1; ++j) {
    const uint8_t* row = b.data.data() + j * row_bytes;
    const float scale = i8 ? b.row_scale[static_cast<size_t>(j)] : 0.0f;
    prefetch_ahead(row, row_bytes, kPrefetchBytes, end);
    for (int64_t i = 0; i < m; i += kDirectRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kDirectRows, m - i));
      (rows == kDirectRows ? job.full : job.tail)(row, k, scale, *job.acts, i, sum);
      for (int r = 0; r < rows; ++r) store(job.c + (i + r) * n + j, sum[r], job.beta);
    }
  }
}

// Where thread share `at` (of the jobs' weight bytes, in order) begins: the job and its weight
// row, cut at a multiple of the job's rows per pass.
std::pair<size_t, int64_t> cut_at(const std::vector<DirectJob>& jobs, double at) {
  double offset = 0;
  for (size_t p = 0; p < jobs.size(); ++p) {
    const double bytes = static_cast<double>(jobs[p].bytes());
    if (at < offset + bytes) {
      const int64_t n = jobs[p].b->rows, wide = jobs[p].wide;
      const auto j =
          static_cast<int64_t>((at - offset) / static_cast<double>(jobs[p].b->row_bytes()));
      return {p, std::min(n, j / wide * wide)};
    }
    offset += bytes;
  }
  return {jobs.size(), 0};
}

// The jobs' weight rows split over the threads by bytes, in one parallel region.
void run_direct(const std::vector<DirectJob>& jobs, bool parallel) {
  double total = 0;
  for (const DirectJob& job : jobs) total += static_cast<double>(job.bytes());
#pragma omp parallel if (parallel)
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const auto from = t == 0 ? std::pair<size_t, int64_t>{0, 0} : cut_at(jobs, total * t / threads);
    const auto to = t + 1 == threads ? std::pair<size_t, int64_t>{jobs.size(), 0}
                                     : cut_at(jobs, total * (t + 1) / threads);
    for (size_t p = from.first; p < jobs.size() && p <= to.first; ++p) {
      const int64_t j0 = p == from.first ? from.second : 0;
      const int64_t j1 = p == to.first ? to.second : jobs[p].b->rows;
      if (j0 < j1) direct_rows(jobs[p], j0, j1);
    }
  }
}
#endif

// Weight rows per bf16 tile: at most kBf16TileValues values, the tiles a multiple of the
// threads (each takes as many), and rows in 16s where there are more (oneDNN's column blocks).
int64_t bf16_tile_rows(int64_t n, int64_t k, int threads) {
  const int64_t most = std::max<int64_t>(1, kBf16TileValues / k);
  int64_t tiles = (n + most - 1) / most;
  tiles = (tiles + threads - 1) / threads * threads;
  int64_t step = (n + tiles - 1) / tiles;
  if (step > 16) step = std::min(most, (step + 15) / 16 * 16);
  return std::max<int64_t>(1, step);
}

using BlockKernel = void (*)(const ActRows&, int64_t, int, WeightRows&, int, bool, float*, int64_t,
                             float);

// Many rows of A: f32 products of dequantized weight tiles. Per-32 integer products need four
// vector operations per 64 products (dot, convert, scale, add: each block has its own two
// scales), no faster than f32 FMA; a tile dequantized once serves all rows of A at sgemm's rate,
// and the weights stay quantized in memory.
void matmul_dequantized_tiles(const float* a, const QuantMatrix& b, float* c, int64_t m,
                              float beta) {
  const int64_t n = b.rows, k = b.cols;
  const int threads = omp_in_parallel() ? 1 : compute_threads();
  // Each thread dequantizes its own tiles and multiplies them on itself (inside a parallel
  // region oneDNN's sgemm runs on the calling thread): with one tile at a time the other
  // threads waited while the calling thread dequantized.
  const int64_t step =
      std::max<int64_t>(1, std::min({n, kTileValues / k, (n + threads - 1) / threads}));
  const int64_t tiles = (n + step - 1) / step;
#pragma omp parallel for schedule(static) if (threads > 1 && tiles > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    thread_local std::vector<float> tile;
    tile.resize(static_cast<size_t>(step * k));
    const int64_t j0 = t * step, rows = std::min(step, n - j0);
    dequantize_rows(b, j0, rows, tile.data());
    gemm(true, m, rows, k, a, k, tile.data(), k, c + j0, n, beta);
  }
}

// Many rows of A where bf16 products are native (oneDNN: AVX512-BF16, AMX tiles): tiles of
// weight rows as above (larger: bf16_tile_rows), dequantized and rounded to bf16, against A
// rounded to bf16 once. oneDNN's bf16
// matmul runs at 2-4x sgemm's rate here (AMD EPYC 854 vs 452 GFLOP/s, Intel Xeon with AMX 1250 vs
// 304); the roundings stay within the integer path's own bound (tests/unit/kernels).
void matmul_bf16_tiles(const float* a, const QuantMatrix& b, float* c, int64_t m, float beta) {
  const int64_t n = b.rows, k = b.cols;
  if (m == 0 || n == 0) return;  // no tiles (bf16_tile_rows divides by their count)
  const int threads = omp_in_parallel() ? 1 : compute_threads();
  thread_local std::vector<uint16_t> a16_buffer;  // the caller's; the threads share it
  std::vector<uint16_t>& a16 = a16_buffer;
  a16.resize(static_cast<size_t>(m * k));
  f32_to_bf16(a, a16.data(), a16.size());
  const int64_t step = bf16_tile_rows(n, k, threads);
  const int64_t tiles = (n + step - 1) / step;
#pragma omp parallel for schedule(static) if (threads > 1 && tiles > 1)
  for (int64_t t = 0; t < tiles; ++t) {
    thread_local std::vector<float> chunk;
    thread_local std::vector<uint16_t> tile;
    const int64_t j0 = t * step, rows = std::min(step, n - j0);
    tile.resize(static_cast<size_t>(rows * k));
    // Dequantized in f32 chunks that stay in L2, rounded into the tile.
    const int64_t chunk_rows = std::max<int64_t>(1, kTileValues / k);
    chunk.resize(static_cast<size_t>(std::min(rows, chunk_rows) * k));
    for (int64_t r = 0; r < rows; r += chunk_rows) {
      const int64_t count = std::min(chunk_rows, rows - r);
      dequantize_rows(b, j0 + r, count, chunk.data());
      f32_to_bf16(chunk.data(), tile.data() + r * k, static_cast<size_t>(count * k));
    }
    matmul_abt_bf16_library(a16.data(), tile.data(), c + j0, n, m, rows, k, beta);
  }
}

BlockKernel kernel_for(QuantPath path) {
#ifdef LORAHUB_VNNI_TARGET
  if (path != QuantPath::kScalar && quant_vnni_available()) return block_vnni_any;
#endif
  check(path != QuantPath::kVnni, "quantized matmul: this CPU has no AVX512-VNNI");
  return block_scalar;
}

}  // namespace

int64_t QuantMatrix::row_bytes() const {
  const FormatInfo& f = info(format);
  return cols / f.values * f.bytes;
}

std::optional<QuantFormat> quant_format_for(BlockFormat format) {
  switch (format) {
    case BlockFormat::Q4_0:
      return QuantFormat::Q4_0;
    case BlockFormat::Q4_1:
      return QuantFormat::Q4_1;
    case BlockFormat::Q5_0:
      return QuantFormat::Q5_0;
    case BlockFormat::Q5_1:
      return QuantFormat::Q5_1;
    case BlockFormat::Q8_0:
      return QuantFormat::Q8_0;
    case BlockFormat::Q4_K:
      return QuantFormat::Q4_K;
    case BlockFormat::Q5_K:
      return QuantFormat::Q5_K;
    case BlockFormat::Q6_K:
      return QuantFormat::Q6_K;
    case BlockFormat::Q8_K:
      return QuantFormat::Q8_K;
    default:
      return std::nullopt;
  }
}

const char* quant_format_name(QuantFormat format) {
  return info(format).name;
}

QuantMatrix quantize_rows_int8(const float* w, int64_t rows, int64_t cols, bool two_levels) {
  QuantMatrix m;
  m.format = QuantFormat::I8;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(static_cast<size_t>(rows * cols));
  m.row_scale.resize(static_cast<size_t>(rows));
  m.row_sum.resize(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = w + r * cols;
    float amax = 0.0f;
    for (int64_t t = 0; t < cols; ++t) amax = std::max(amax, std::fabs(src[t]));
    const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    m.row_scale[static_cast<size_t>(r)] = amax / 127.0f;
    auto* dst = reinterpret_cast<int8_t*>(m.data.data() + r * cols);
    int32_t sum = 0;
    for (int64_t t = 0; t < cols; ++t) {
      dst[t] = static_cast<int8_t>(std::nearbyint(src[t] * inv));
      sum += dst[t];
    }
    m.row_sum[static_cast<size_t>(r)] = sum;
  }
  if (two_levels) {
    // The first level's rounding leaves at most half a step, which ±127 steps of scale / 254 span.
    auto res = std::make_shared<QuantMatrix>();
    res->format = QuantFormat::I8;
    res->rows = rows;
    res->cols = cols;
    res->data.resize(static_cast<size_t>(rows * cols));
    res->row_scale.resize(static_cast<size_t>(rows));
    res->row_sum.resize(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      const float step = m.row_scale[static_cast<size_t>(r)], fine = step / 254.0f;
      const float inv = step > 0.0f ? 1.0f / fine : 0.0f;
      res->row_scale[static_cast<size_t>(r)] = fine;
      const float* src = w + r * cols;
      const auto* q = reinterpret_cast<const int8_t*>(m.data.data() + r * cols);
      auto* dst = reinterpret_cast<int8_t*>(res->data.data() + r * cols);
      int32_t sum = 0;
      for (int64_t t = 0; t < cols; ++t) {
        const float q2 = std::nearbyint((src[t] - static_cast<float>(q[t]) * step) * inv);
        dst[t] = static_cast<int8_t>(std::clamp(q2, -127.0f, 127.0f));
        sum += dst[t];
      }
      res->row_sum[static_cast<size_t>(r)] = sum;
    }
    pack_int8_for_library(*res);
    m.residual = std::move(res);
  }
  pack_int8_for_library(m);
  return m;
}

void dequantize_rows(const QuantMatrix& m, int64_t row0, int64_t count, float* out) {
  check(row0 >= 0 && count >= 0 && row0 + count <= m.rows,
        "dequantize_rows: rows {}..{} of a {}-row matrix", row0, row0 + count, m.rows);
  const uint8_t* src = m.data.data() + row0 * m.row_bytes();
  if (m.format != QuantFormat::I8)
    return dequantize(block_format_of(m.format), reinterpret_cast<const std::byte*>(src), out,
                      count * m.cols);
  for (int64_t r = 0; r < count; ++r) {
    const float s = m.row_scale[static_cast<size_t>(row0 + r)];
    const auto* q = reinterpret_cast<const int8_t*>(src + r * m.cols);
    for (int64_t t = 0; t < m.cols; ++t) out[r * m.cols + t] = static_cast<float>(q[t]) * s;
    if (m.residual == nullptr) continue;
    const float s2 = m.residual->row_scale[static_cast<size_t>(row0 + r)];
    const auto* q2 = reinterpret_cast<const int8_t*>(m.residual->data.data() + (row0 + r) * m.cols);
    for (int64_t t = 0; t < m.cols; ++t) out[r * m.cols + t] += static_cast<float>(q2[t]) * s2;
  }
}

bool quant_vnni_available() {
#ifdef LORAHUB_VNNI_TARGET
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("f16c");
  return yes;
#else
  return false;
#endif
}

void matmul_abt_quant(const float* a, const QuantMatrix& b, float* c, int64_t m, float beta,
                      QuantPath path) {
  check(m >= 0 && b.rows >= 0 && b.cols > 0, "quantized matmul: bad shape {}x{} · ({}x{})ᵀ", m,
        b.cols, b.rows, b.cols);
  check(b.cols % info(b.format).values == 0 &&
            static_cast<int64_t>(b.data.size()) == b.rows * b.row_bytes(),
        "quantized matmul: {} matrix {}x{} does not hold whole blocks", quant_format_name(b.format),
        b.rows, b.cols);
  const bool many = path == QuantPath::kAuto && m > kIntegerRowsMax;
  if (path == QuantPath::kLibraryInt8 ||
      (many && m >= kLibraryRowsMin && b.format == QuantFormat::I8 && int8_library_available()))
    return matmul_int8_library(a, b, c, m, beta);
  if (path == QuantPath::kBf16Tiles ||
      (many && b.format != QuantFormat::I8 && bf16_matmul_native()))
    return matmul_bf16_tiles(a, b, c, m, beta);
  if (path == QuantPath::kDequantizedTiles || many)
    return matmul_dequantized_tiles(a, b, c, m, beta);  // both levels, dequantized
  if (b.residual != nullptr) {  // the integer kernels, once per level (the second adds)
    matmul_abt_quant(a, *b.residual, c, m, beta, path);
    beta = 1.0f;
  }
  const BlockKernel kernel = kernel_for(path);
  const int64_t n = b.rows, k = b.cols;
  const bool offsets = info(b.format).offsets;
  thread_local ActRows buffer;  // the caller's; the OpenMP threads below share it through x
  ActRows& x = buffer;
  quantize_activations(a, m, k, x);
  const bool parallel = n * k >= kParallelMin && compute_threads() != 1;
#ifdef LORAHUB_VNNI_TARGET
  if (kernel == block_vnni_any && direct_kernel(b.format, 1) != nullptr) {
    thread_local DirectBuffers buffers;
    thread_local std::vector<DirectJob> jobs;
    jobs.clear();
    jobs.push_back(prepare_direct(x, b, c, m, beta, buffers));
    return run_direct(jobs, parallel);
  }
#endif
  const int64_t col_blocks = (n + kColBlock - 1) / kColBlock;
#pragma omp parallel if (parallel)
  {
    WeightRows w(k);
    // Each tile of A's rows against every weight row: the tile's quantized copy stays in cache
    // while the weights stream by; a weight row pair is unpacked once per tile.
    for (int64_t t0 = 0; t0 < m; t0 += kRowTile) {
      const int64_t t1 = std::min(m, t0 + kRowTile);
#pragma omp for schedule(static) nowait
      for (int64_t jb = 0; jb < col_blocks; ++jb) {
        const int64_t j0 = jb * kColBlock;
        const int cols = static_cast<int>(std::min<int64_t>(kColBlock, n - j0));
        for (int j = 0; j < cols; ++j) unpack_row(b, j0 + j, w, j);
        for (int64_t i = t0; i < t1; i += kRowBlock) {
          const int rows = static_cast<int>(std::min<int64_t>(kRowBlock, t1 - i));
          kernel(x, i, rows, w, cols, offsets, c + i * n + j0, n, beta);
        }
      }
    }
  }
}

void matmul_abt_quant_many(const float* a, int64_t m, const std::vector<QuantProduct>& products,
                           QuantPath path) {
  if (products.empty()) return;
  const int64_t k = products[0].b->cols;
  bool together = products.size() > 1 && m <= kIntegerRowsMax &&
                  (path == QuantPath::kAuto || path == QuantPath::kVnni);
#ifdef LORAHUB_VNNI_TARGET
  together = together && kernel_for(path) == block_vnni_any;
#else
  together = false;
#endif
  for (const QuantProduct& p : products) {
    check(p.b->cols == k, "quantized matmul: products of one A take {} columns, not {}", k,
          p.b->cols);
#ifdef LORAHUB_VNNI_TARGET
    together = together && direct_kernel(p.b->format, 1) != nullptr;
#endif
  }
  if (!together) {
    for (const QuantProduct& p : products) matmul_abt_quant(a, *p.b, p.c, m, 0.0f, path);
    return;
  }
#ifdef LORAHUB_VNNI_TARGET
  int64_t values = 0;
  for (const QuantProduct& p : products) {
    const QuantMatrix& b = *p.b;
    check(b.cols % info(b.format).values == 0 &&
              static_cast<int64_t>(b.data.size()) == b.rows * b.row_bytes(),
          "quantized matmul: {} matrix {}x{} does not hold whole blocks",
          quant_format_name(b.format), b.rows, b.cols);
    values += b.rows * b.cols;
  }
  thread_local ActRows x;  // the caller's; the OpenMP threads share it through the jobs
  quantize_activations(a, m, k, x);
  // One buffer set per product (products of one format could share theirs: small at these rows).
  thread_local std::vector<DirectBuffers> buffers;
  thread_local std::vector<DirectJob> jobs;
  if (buffers.size() < products.size()) buffers.resize(products.size());
  jobs.clear();
  for (size_t p = 0; p < products.size(); ++p)
    jobs.push_back(prepare_direct(x, *products[p].b, products[p].c, m, 0.0f, buffers[p]));
  run_direct(jobs, values >= kParallelMin && compute_threads() != 1);
#endif
}

}  // namespace lorahub

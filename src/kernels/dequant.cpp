#include "kernels/dequant.h"

#include <array>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "kernels/dequant_grids.h"

// gguf.quants computes d·q and then ± m as separately rounded f32 operations, and scales as
// (d·s)·q: a fused multiply-add would round once and differ in the last bit, so contraction is
// off and every expression below keeps numpy's order of operations.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lorahub {

void scale_min_k4(const uint8_t* s, uint8_t* sc, uint8_t* mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 0x3f;
    mn[j] = s[j + 4] & 0x3f;
    sc[j + 4] = (s[j + 8] & 0x0f) | ((s[j] >> 2) & 0x30);
    mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 2) & 0x30);
  }
}

namespace {

using Kernel = void (*)(const uint8_t* block, float* out);
namespace grids = dequant_grids;

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}
uint16_t u16_at(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t u32_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// x · (−1 when bit `bit` of pattern is set, else 1), as x86's multiply gives it: a NaN x comes
// back unchanged. (The compiler may turn x · −1 into a negation, which flips a NaN's sign: so the
// product is spelled out.)
float with_sign(float x, uint8_t pattern, int bit) {
  return ((pattern >> bit) & 1) && !std::isnan(x) ? -x : x;
}

constexpr std::array<int8_t, 16> kIq4nlValues = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                 1,    13,   25,  38,  53,  69,  89,  113};
// e2m1 values, doubled (the scales are halved to match): MXFP4 and NVFP4.
constexpr std::array<int8_t, 16> kFp4Values = {0, 1,  2,  3,  4,  6,  8,  12,
                                               0, -1, -2, -3, -4, -6, -8, -12};

// ---------------------------------------------------------------- legacy, 32 values per block

// Q4_0: f16 d | 16 B nibbles.  x = d·(q − 8)
void q4_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(nibble32(b + 2, j) - 8);
}
// Q4_1: f16 d | f16 m | 16 B nibbles.  x = d·q + m
void q4_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(nibble32(b + 4, j)) + m;
}
// Q5_0: f16 d | u32 qh (bit j = 5th bit of element j) | 16 B nibbles.  x = d·(q − 16)
void q5_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint32_t qh = u32_at(b + 2);
  for (int j = 0; j < 32; ++j) {
    const int q = nibble32(b + 6, j) | static_cast<int>((qh >> j & 1) << 4);
    y[j] = d * static_cast<float>(q - 16);
  }
}
// Q5_1: f16 d | f16 m | u32 qh | 16 B nibbles.  x = d·q + m
void q5_1(const uint8_t* b, float* y) {
  const float d = f16_at(b), m = f16_at(b + 2);
  const uint32_t qh = u32_at(b + 4);
  for (int j = 0; j < 32; ++j) {
    const int q = nibble32(b + 8, j) | static_cast<int>((qh >> j & 1) << 4);
    y[j] = d * static_cast<float>(q) + m;
  }
}
// Q8_0: f16 d | 32 × int8.  x = q·d
void q8_0(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const auto* q = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(q[j]) * d;
}
// IQ4_NL: f16 d | 16 B nibbles indexing a non-linear table.  x = d·table[q]
void iq4_nl(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(kIq4nlValues[nibble32(b + 2, j)]);
}
// MXFP4: e8m0 exponent e | 16 B nibbles of e2m1.  x = 2^(e−128)·(2·fp4)
void mxfp4(const uint8_t* b, float* y) {
  const uint32_t e = b[0];
  const uint32_t bits = e < 2 ? 0x00200000u << e : (e - 1) << 23;
  float d;
  std::memcpy(&d, &bits, 4);
  for (int j = 0; j < 32; ++j) y[j] = d * static_cast<float>(kFp4Values[nibble32(b + 1, j)]);
}

// ---------------------------------------------------------------- k-quants, 256 per block

// Q2_K: 16 B scales (low nibble scale, high nibble min) | 64 B of 2-bit q | f16 d | f16 dmin.
// Element i = 128·h + 32·s + l takes bits 2s of byte 32·h + l; sub-block i / 16.
// x = (d·sc)·q − dmin·m
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* sc = b;
  const uint8_t* qs = b + 16;
  const float d = f16_at(b + 80), dmin = f16_at(b + 82);
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, s = i / 32 % 4, l = i % 32;
    const float q = static_cast<float>((qs[32 * h + l] >> (2 * s)) & 3);
    const uint8_t g = sc[i / 16];
    y[i] = d * static_cast<float>(g & 0xf) * q - dmin * static_cast<float>(g >> 4);
  }
}
// Q3_K: 32 B hmask | 64 B of 2-bit q | 12 B of 6-bit scales | f16 d. Low 2 bits as Q2_K; the
// third bit is bit i / 32 of hmask[i % 32], and a *clear* bit subtracts 4. x = (d·(sc − 32))·q
void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* s = b + 96;
  const float d = f16_at(b + 108);
  float dl[16];
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? s[j] & 0xf : s[j - 8] >> 4;
    const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    dl[j] = d * static_cast<float>(static_cast<int8_t>(low | high << 4) - 32);
  }
  for (int i = 0; i < 256; ++i) {
    const int h = i / 128, sh = i / 32 % 4, l = i % 32;
    const int low = (qs[32 * h + l] >> (2 * sh)) & 3;
    const int high = ((hmask[l] >> (i / 32)) & 1) ^ 1;
    y[i] = dl[i / 16] * static_cast<float>(low - (high << 2));
  }
}
// Q4_K: f16 d | f16 dmin | 12 B scales | 128 B nibbles. Element i = 64·c + 32·k + l is nibble k
// of byte 32·c + l; sub-block i / 32.  x = (d·sc)·q − dmin·m
void q4_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  uint8_t sc[8], mn[8];
  scale_min_k4(b + 4, sc, mn);
  const uint8_t* qs = b + 16;
  // Per sub-block (constant scale and shift) so that the inner loop vectorizes: prefill
  // dequantizes every weight once per call (kernels/quant_matmul.cpp, many rows).
  for (int g = 0; g < 8; ++g) {
    const float s = d * static_cast<float>(sc[g]), m = dmin * static_cast<float>(mn[g]);
    const uint8_t* src = qs + 32 * (g / 2);
    const int shift = 4 * (g % 2);
    for (int l = 0; l < 32; ++l)
      y[32 * g + l] = s * static_cast<float>((src[l] >> shift) & 0xf) - m;
  }
}
// Q5_K: Q4_K's header | 32 B qh (5th bit of element i = bit i / 32 of qh[i % 32]) | 128 B nibbles.
void q5_k(const uint8_t* b, float* y) {
  const float d = f16_at(b), dmin = f16_at(b + 2);
  uint8_t sc[8], mn[8];
  scale_min_k4(b + 4, sc, mn);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int i = 0; i < 256; ++i) {
    const int c = i / 64, k = i / 32 % 2, l = i % 32, g = i / 32;
    const int q = ((qs[32 * c + l] >> (4 * k)) & 0xf) | (((qh[l] >> g) & 1) << 4);
    y[i] = d * static_cast<float>(sc[g]) * static_cast<float>(q) - dmin * static_cast<float>(mn[g]);
  }
}
// Q6_K: 128 B low nibbles | 64 B high 2 bits | 16 × int8 scales | f16 d. Element
// i = 128·h + 64·k + l (l < 64) takes nibble k of ql[64·h + l]; its high bits are bits 2·(i/32 % 4)
// of qh[32·h + i % 32].  x = (d·sc)·(q − 32)
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = f16_at(b + 208);
  // Per 32 values (t: i / 32 % 4 = 2k + half) so that shifts are constant and the loop vectorizes.
  for (int h = 0; h < 2; ++h)
    for (int k = 0; k < 2; ++k)
      for (int half = 0; half < 2; ++half) {
        const int i0 = 128 * h + 64 * k + 32 * half, t = 2 * k + half;
        const uint8_t* lo = ql + 64 * h + 32 * half;
        const uint8_t* hi = qh + 32 * h;
        const float s0 = d * static_cast<float>(sc[i0 / 16]);
        const float s1 = d * static_cast<float>(sc[i0 / 16 + 1]);
        for (int l = 0; l < 32; ++l) {
          const int q = (((lo[l] >> (4 * k)) & 0xf) | ((hi[l] >> (2 * t)) & 3) << 4) - 32;
          y[i0 + l] = (l < 16 ? s0 : s1) * static_cast<float>(q);
        }
      }
}
// Q8_K: f32 d | 256 × int8 | 16 × int16 block sums (unused here).  x = d·q
void q8_k(const uint8_t* b, float* y) {
  float d;
  std::memcpy(&d, b, 4);
  const auto* q = reinterpret_cast<const int8_t*>(b + 4);
  for (int i = 0; i < 256; ++i) y[i] = d * static_cast<float>(q[i]);
}

// ---------------------------------------------------------------- ternary

// TQ1_0: 48 B + 4 B of base-3 digits packed 5 (or 4) per byte as ⌈v·256/243⌉ | f16 d. Digit n of a
// byte is ((u8)(byte·3ⁿ)·3) >> 8. Elements: 0..159 from bytes 0..31 (i = 32·n + l), 160..239 from
// bytes 32..47 (16·n + l), 240..255 from the 4 high bytes (4·n + l).  x = d·(digit − 1)
void tq1_0(const uint8_t* b, float* y) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const float d = f16_at(b + 52);
  auto trit = [](uint8_t byte, int n) {
    const auto shifted = static_cast<uint8_t>(byte * kPow3[n]);
    return static_cast<int>((static_cast<uint16_t>(shifted) * 3) >> 8) - 1;
  };
  for (int n = 0; n < 5; ++n)
    for (int l = 0; l < 32; ++l) y[32 * n + l] = d * static_cast<float>(trit(b[l], n));
  for (int n = 0; n < 5; ++n)
    for (int l = 0; l < 16; ++l) y[160 + 16 * n + l] = d * static_cast<float>(trit(b[32 + l], n));
  for (int n = 0; n < 4; ++n)
    for (int l = 0; l < 4; ++l) y[240 + 4 * n + l] = d * static_cast<float>(trit(b[48 + l], n));
}
// TQ2_0: 64 B of 2-bit digits (element i = 128·c + 32·s + l: bits 2s of byte 32·c + l) | f16 d.
void tq2_0(const uint8_t* b, float* y) {
  const float d = f16_at(b + 64);
  for (int i = 0; i < 256; ++i) {
    const int c = i / 128, s = i / 32 % 4, l = i % 32;
    y[i] = d * static_cast<float>(((b[32 * c + l] >> (2 * s)) & 3) - 1);
  }
}

// NVFP4 (64 per block): 4 ue4m3 sub-block scales | 4 × 8 B nibbles (16 values each: the 8 low
// nibbles, then the 8 high ones).  x = (ue4m3/2)·(2·fp4)
float ue4m3_half(uint8_t x) {
  if (x == 0 || x == 0x7f) return 0.0f;
  const int exp = (x >> 3) & 0xf;
  const float man = static_cast<float>(x & 7);
  const float raw =
      exp == 0 ? man * 0x1p-9f : (1.0f + man / 8.0f) * static_cast<float>(1 << exp) * 0x1p-7f;
  return raw * 0.5f;
}
void nvfp4(const uint8_t* b, float* y) {
  for (int s = 0; s < 4; ++s) {
    const float d = ue4m3_half(b[s]);
    const uint8_t* qs = b + 4 + 8 * s;
    for (int j = 0; j < 16; ++j) {
      const int q = j < 8 ? qs[j] & 0xf : qs[j - 8] >> 4;
      y[16 * s + j] = d * static_cast<float>(kFp4Values[q]);
    }
  }
}

// ---------------------------------------------------------------- IQ types, 256 per block
// Groups of 8 values are a grid point times ±1 signs, times a sub-block scale db:
// x = (db·grid)·sign.

// 8 values of grid point `point` with sign bits `signs`, scaled by db.
void grid8(const int8_t* point, uint8_t signs, float db, float* y) {
  for (int j = 0; j < 8; ++j) y[j] = with_sign(db * static_cast<float>(point[j]), signs, j);
}

// IQ2_XXS: f16 d | 8 × (u32 four grid indices, u32 four 7-bit sign indices + 4-bit scale).
// db = (d·(0.5 + s))·0.25
void iq2_xxs(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  for (int g = 0; g < 8; ++g) {
    const uint8_t* grid_ids = b + 2 + 8 * g;
    const uint32_t aux = u32_at(grid_ids + 4);
    const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.25f;
    for (int k = 0; k < 4; ++k)
      grid8(grids::kIq2xxs[grid_ids[k]], grids::kSigns[(aux >> (7 * k)) & 0x7f], db,
            y + 32 * g + 8 * k);
  }
}
// IQ2_XS: f16 d | 32 × u16 (9-bit grid index, 7-bit sign index) | 8 B of 4-bit scales (16
// scales, each for 16 values).
void iq2_xs(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* scales = b + 66;
  for (int m = 0; m < 32; ++m) {
    const uint16_t q = u16_at(b + 2 + 2 * m);
    const int s = (scales[m / 4] >> (4 * (m / 2 % 2))) & 0xf;
    const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
    grid8(grids::kIq2xs[q & 511], grids::kSigns[q >> 9], db, y + 8 * m);
  }
}
// IQ2_S: f16 d | 32 B low grid bits | 32 B sign bits | 8 B high grid bits (2 per index) |
// 8 B of 4-bit scales.
void iq2_s(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  const uint8_t* signs = b + 34;
  const uint8_t* qh = b + 66;
  const uint8_t* scales = b + 74;
  for (int m = 0; m < 32; ++m) {
    const int index = qs[m] | (((qh[m / 4] >> (2 * (m % 4))) & 3) << 8);
    const int s = (scales[m / 4] >> (4 * (m / 2 % 2))) & 0xf;
    const float db = d * (0.5f + static_cast<float>(s)) * 0.25f;
    grid8(grids::kIq2s[index], signs[m], db, y + 8 * m);
  }
}
// 4 values of grid point `point`, signs from bits `bit0`.. of `signs`.
void grid4(const int8_t* point, uint8_t signs, int bit0, float db, float* y) {
  for (int j = 0; j < 4; ++j) y[j] = with_sign(db * static_cast<float>(point[j]), signs, bit0 + j);
}
// IQ3_XXS: f16 d | 64 B grid indices (4 values each) | 8 × u32 (four 7-bit sign indices + 4-bit
// scale).  db = (d·(0.5 + s))·0.5
void iq3_xxs(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int g = 0; g < 8; ++g) {
    const uint32_t aux = u32_at(b + 66 + 4 * g);
    const float db = d * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
    for (int k = 0; k < 4; ++k) {
      const uint8_t signs = grids::kSigns[(aux >> (7 * k)) & 0x7f];
      for (int h = 0; h < 2; ++h)
        grid4(grids::kIq3xxs[qs[8 * g + 2 * k + h]], signs, 4 * h, db, y + 32 * g + 8 * k + 4 * h);
    }
  }
}
// IQ3_S: f16 d | 64 B low grid bits | 8 B high grid bits (1 per index) | 32 B sign bits |
// 4 B of 4-bit scales (8 scales, each for 32 values).  db = d·(1 + 2s)
void iq3_s(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  const uint8_t* qh = b + 66;
  const uint8_t* signs = b + 74;
  const uint8_t* scales = b + 106;
  for (int m = 0; m < 64; ++m) {
    const int index = qs[m] | (((qh[m / 8] >> (m % 8)) & 1) << 8);
    const int s = (scales[m / 16] >> (4 * (m / 8 % 2))) & 0xf;
    const float db = d * static_cast<float>(1 + 2 * s);
    grid4(grids::kIq3s[index], signs[m / 2], 4 * (m % 2), db, y + 4 * m);
  }
}
// IQ1_S: f16 d | 32 B low grid bits | 8 × u16 (3 high bits per index ×4, 3-bit scale, delta sign).
// x = (d·(2s + 1))·(grid ± 0.125), grid points in {−1, 0, 1}
void iq1_s(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint8_t* qs = b + 2;
  for (int g = 0; g < 8; ++g) {
    const uint16_t qh = u16_at(b + 34 + 2 * g);
    const float dl = d * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
    const float delta = (qh & 0x8000) == 0 ? 0.125f : -0.125f;
    for (int k = 0; k < 4; ++k) {
      const int8_t* point = grids::kIq1s[qs[4 * g + k] | (((qh >> (3 * k)) & 7) << 8)];
      for (int j = 0; j < 8; ++j)
        y[32 * g + 8 * k + j] = dl * (static_cast<float>(point[j]) + delta);
    }
  }
}
// IQ1_M: 32 B low grid bits | 16 B nibbles (3 high index bits + delta sign, per index) | 4 × u16
// holding 3-bit scales (16, one per 16 values) and, in their top nibbles, the f16 d.
void iq1_m(const uint8_t* b, float* y) {
  const uint8_t* qs = b;
  const uint8_t* qh = b + 32;
  uint16_t sc[4];
  for (int i = 0; i < 4; ++i) sc[i] = u16_at(b + 48 + 2 * i);
  const auto d_bits = static_cast<uint16_t>((sc[0] & 0xf000) >> 12 | (sc[1] & 0xf000) >> 8 |
                                            (sc[2] & 0xf000) >> 4 | (sc[3] & 0xf000));
  const float d = f16_to_f32(d_bits);
  for (int m = 0; m < 32; ++m) {
    const int s = (sc[m / 8] >> (3 * (m / 2 % 4))) & 7;
    const float dl = d * static_cast<float>(2 * s + 1);
    const int nib = (qh[m / 2] >> (4 * (m % 2))) & 0xf;
    const float delta = (nib & 8) == 0 ? 0.125f : -0.125f;
    const int8_t* point = grids::kIq1s[qs[m] | ((nib & 7) << 8)];
    for (int j = 0; j < 8; ++j) y[8 * m + j] = dl * (static_cast<float>(point[j]) + delta);
  }
}
// IQ4_XS: f16 d | u16 high scale bits (2 per sub-block) | 4 B low scale nibbles | 128 B nibbles
// (sub-block j: low nibbles of bytes 16j.., then high).  x = (d·(s − 32))·table[q]
void iq4_xs(const uint8_t* b, float* y) {
  const float d = f16_at(b);
  const uint16_t high = u16_at(b + 2);
  const uint8_t* low = b + 4;
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 8; ++j) {
    const int s = ((low[j / 2] >> (4 * (j % 2))) & 0xf) | (((high >> (2 * j)) & 3) << 4);
    const float dl = d * static_cast<float>(static_cast<int8_t>(s) - 32);
    for (int l = 0; l < 32; ++l)
      y[32 * j + l] = dl * static_cast<float>(kIq4nlValues[nibble32(qs + 16 * j, l)]);
  }
}

struct FormatEntry {
  BlockLayout layout;
  Kernel kernel;
};

// Indexed by BlockFormat; sizes as gguf's GGML_QUANT_SIZES.
constexpr FormatEntry kFormats[] = {
    {{"Q4_0", 32, 18}, q4_0},      {{"Q4_1", 32, 20}, q4_1},       {{"Q5_0", 32, 22}, q5_0},
    {{"Q5_1", 32, 24}, q5_1},      {{"Q8_0", 32, 34}, q8_0},       {{"Q2_K", 256, 84}, q2_k},
    {{"Q3_K", 256, 110}, q3_k},    {{"Q4_K", 256, 144}, q4_k},     {{"Q5_K", 256, 176}, q5_k},
    {{"Q6_K", 256, 210}, q6_k},    {{"Q8_K", 256, 292}, q8_k},     {{"IQ2_XXS", 256, 66}, iq2_xxs},
    {{"IQ2_XS", 256, 74}, iq2_xs}, {{"IQ2_S", 256, 82}, iq2_s},    {{"IQ3_XXS", 256, 98}, iq3_xxs},
    {{"IQ3_S", 256, 110}, iq3_s},  {{"IQ1_S", 256, 50}, iq1_s},    {{"IQ1_M", 256, 56}, iq1_m},
    {{"IQ4_NL", 32, 18}, iq4_nl},  {{"IQ4_XS", 256, 136}, iq4_xs}, {{"TQ1_0", 256, 54}, tq1_0},
    {{"TQ2_0", 256, 66}, tq2_0},   {{"MXFP4", 32, 17}, mxfp4},     {{"NVFP4", 64, 36}, nvfp4},
};
static_assert(std::size(kFormats) == static_cast<size_t>(BlockFormat::NVFP4) + 1);

const FormatEntry& entry(BlockFormat format) {
  const auto i = static_cast<size_t>(format);
  check(i < std::size(kFormats), "unknown block format {}", i);
  return kFormats[i];
}

}  // namespace

const BlockLayout& block_layout(BlockFormat format) {
  return entry(format).layout;
}

void dequantize(BlockFormat format, const std::byte* src, float* dst, int64_t n) {
  const FormatEntry& f = entry(format);
  check(n % f.layout.elements == 0, "dequantize {}: {} elements is not a multiple of {}",
        f.layout.name, n, f.layout.elements);
  const int64_t blocks = n / f.layout.elements;
  const auto* bytes = reinterpret_cast<const uint8_t*>(src);
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b)
    f.kernel(bytes + b * f.layout.bytes, dst + b * f.layout.elements);
}

}  // namespace lorahub

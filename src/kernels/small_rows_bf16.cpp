// The bf16 product for a few rows of A (decoding: one row per sequence of the batch), on the
// Linear weight as it lies ([n, k] row-major bf16), with AVX512-BF16's dot product (vdpbf16ps:
// pairs of bf16 products added into f32 lanes).
//
// Why by hand: a decoding step is ~200 products of a few rows (one per sequence decoded; up to
// kSmallRowsMax) against the whole weight, so it is bound by reading the weights once. oneDNN's
// matmul on an unpacked [n, k] bf16 weight reads it at 11-13 GB/s here for 10 rows
// (bench/smollm2_results.md); it would want the weight reordered into a layout it picks per shape,
// a second copy of the model. This kernel streams each weight row once, at whatever layout the
// model already has, and reuses every 32-value chunk of it for all rows of A from registers.
#include "kernels/small_rows_bf16.h"

#include <algorithm>

#include "core/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
// Compiled for AVX512-BF16 whatever the build's -march, and called only where the CPU has it
// (small_rows_bf16_available): a portable build (CMake LORAHUB_NATIVE=OFF) keeps the kernel.
#define LORAHUB_BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

namespace lorahub {

#ifdef LORAHUB_BF16_TARGET
namespace {

constexpr int kRowBlock = 4;  // rows of A per register block (4 x 4 accumulators + 5 operands)
constexpr int kColBlock = 4;  // weight rows per register block
constexpr int64_t kParallelMin = 1 << 15;  // below this many weight values one thread wins

// acc[i][j] = Σ_k a[i][k]·b[j][k] over the full rows; the last chunk is masked (zeros add
// nothing), so any k works.
template <int R, int C>
LORAHUB_BF16_TARGET inline void dot_block(const uint16_t* a, const uint16_t* b,
                                          const uint16_t* next_b, int64_t k, __m512 (&acc)[R][C]) {
  // Every loop over R and C fully unrolled: an array indexed by a loop variable would live on the
  // stack, and GCC would store the 16 accumulators after every chunk (4x slower).
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k0 = 0; k0 < k; k0 += 32) {
    const int64_t left = k - k0;
    const __mmask32 mask = left >= 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
    __m512bh bv[C];
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) {
      bv[j] = (__m512bh)_mm512_maskz_loadu_epi16(mask, b + j * k + k0);
      // The next weight block at the same offsets streams in while this one computes (the
      // hardware prefetcher alone leaves the dot products waiting on memory).
      _mm_prefetch(reinterpret_cast<const char*>(next_b + j * k + k0), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const __m512bh av = (__m512bh)_mm512_maskz_loadu_epi16(mask, a + i * k + k0);
#pragma GCC unroll 4
      for (int j = 0; j < C; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], av, bv[j]);
    }
  }
}

// The sum of the 16 lanes. (_mm512_reduce_add_ps and the unmasked shuffles do the same but trip
// GCC 12's -Wuninitialized through their _mm512_undefined operand: the full-mask forms name it.)
LORAHUB_BF16_TARGET inline float lane_sum(__m512 v) {
  constexpr __mmask16 kAll = 0xFFFF;
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, 0b01001110));  // other 256 bits
  v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, kAll, v, v, 0b10110001));  // next 128 bits
  __m128 x = _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xF, v, 0);         // the low 128 bits
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

// C[i, j] (row stride n) for R rows of A and C rows of the weight.
template <int R, int C>
LORAHUB_BF16_TARGET inline void block(const uint16_t* a, const uint16_t* b, const uint16_t* next_b,
                                      float* c, int64_t n, int64_t k, float beta) {
  __m512 acc[R][C];
  dot_block<R, C>(a, b, next_b, k, acc);
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < C; ++j) {
      const float sum = lane_sum(acc[i][j]);
      float& out = c[i * n + j];
      out = beta == 0.0f ? sum : sum + beta * out;  // beta 0 never reads C (may be garbage)
    }
}

// Every row of A against C weight rows: the weight block stays in L1 for the later row blocks.
template <int C>
LORAHUB_BF16_TARGET void column_block(const uint16_t* a, const uint16_t* b, const uint16_t* next_b,
                                      float* c, int64_t m, int64_t n, int64_t k, float beta) {
  for (int64_t i = 0; i < m; i += kRowBlock) {
    const uint16_t* ai = a + i * k;
    float* ci = c + i * n;
    switch (std::min<int64_t>(kRowBlock, m - i)) {
      case 4:
        block<4, C>(ai, b, next_b, ci, n, k, beta);
        break;
      case 3:
        block<3, C>(ai, b, next_b, ci, n, k, beta);
        break;
      case 2:
        block<2, C>(ai, b, next_b, ci, n, k, beta);
        break;
      default:
        block<1, C>(ai, b, next_b, ci, n, k, beta);
        break;
    }
  }
}

// Weight rows [j0, j0 + kColBlock) (or the single row j0 with one = true). Not inline: the
// parallel loop calling it runs in a function outlined by OpenMP, outside the target attribute.
LORAHUB_BF16_TARGET void weight_rows(const uint16_t* a, const uint16_t* b, float* c, int64_t m,
                                     int64_t n, int64_t k, float beta, int64_t j0, int64_t next_j,
                                     bool one) {
  if (one) return column_block<1>(a, b + j0 * k, b + j0 * k, c + j0, m, n, k, beta);
  column_block<kColBlock>(a, b + j0 * k, b + next_j * k, c + j0, m, n, k, beta);
}

}  // namespace

bool small_rows_bf16_available() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512bf16");
  return yes;
}

void small_rows_abt_bf16(const uint16_t* a, const uint16_t* b, float* c, int64_t m, int64_t n,
                         int64_t k, float beta) {
  check(small_rows_bf16_available(), "small_rows_abt_bf16: this CPU has no AVX512-BF16");
  const int64_t blocks = n / kColBlock;
#pragma omp parallel for schedule(static) if (n * k >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk)
    weight_rows(a, b, c, m, n, k, beta, blk * kColBlock, std::min(blk + 1, blocks - 1) * kColBlock,
                false);
  for (int64_t j = blocks * kColBlock; j < n; ++j) weight_rows(a, b, c, m, n, k, beta, j, j, true);
}

#else

bool small_rows_bf16_available() {
  return false;
}

void small_rows_abt_bf16(const uint16_t*, const uint16_t*, float*, int64_t, int64_t, int64_t,
                         float) {
  fail("small_rows_abt_bf16: AVX512-BF16 kernels need an x86-64 build");
}

#endif

}  // namespace lorahub

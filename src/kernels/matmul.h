// The one front for dense matrix products. The fp32 reference path calls OpenBLAS sgemm; a faster
// path (bf16 via oneDNN) can be added behind these functions without touching the models.
// All matrices are row-major.
#pragma once
#include <cstdint>

namespace lorahub {

// C[m,n] = A[m,k] · B[n,k]ᵀ + beta·C. B is laid out like a PyTorch Linear weight [out, in].
void matmul_abt(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
                float beta = 0.0f);

// C[m,n] = A[m,k] · B[k,n] + beta·C.
void matmul_ab(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k,
               float beta = 0.0f);

// Strided general form for views into wider rows (attention heads): lda/ldb/ldc are row strides.
void gemm(bool transpose_b, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float* c, int64_t ldc, float beta = 0.0f);

// bf16 fast path (matmul_bf16.cpp): C[m,n] = bf16(A)[m,k] · B[n,k]ᵀ + beta·C with B already in
// bf16 (a Linear weight converted once at load). Products of bf16 values accumulated in f32 by
// oneDNN (AVX512-BF16 where the CPU has it), so the only error against matmul_abt is the rounding
// of A and B to bf16: relative error about 2^-8 per product (tolerance: tests/unit/kernels).
//
// Two implementations: up to kSmallRowsMax rows (6 where oneDNN has AMX; a decoding step) a kernel
// of ours on AVX512-BF16 (kernels/small_rows_bf16.h) where the build has it, else oneDNN. `path`
// forces one for tests and benchmarks; kSmallRows throws where the build lacks AVX512-BF16. The
// choice depends on the CPU (AMX or not), and the two sum in different orders: the bf16 path's
// numbers differ between CPUs by rounding (keyed as such: LORAHUB_BF16_NUMERICS_REVISION).
enum class Bf16Path { kAuto, kLibrary, kSmallRows };
inline constexpr int64_t kSmallRowsMax = 32;
void matmul_abt_bf16(const float* a, const uint16_t* b, float* c, int64_t m, int64_t n, int64_t k,
                     float beta = 0.0f, Bf16Path path = Bf16Path::kAuto);
// The same with A already rounded to bf16 (a16 = f32_to_bf16(a)): one rounding pass for several
// products that read the same input (q, k, v; gate and up).
void matmul_abt_bf16(const uint16_t* a16, const uint16_t* b, float* c, int64_t m, int64_t n,
                     int64_t k, float beta = 0.0f, Bf16Path path = Bf16Path::kAuto);
// The library's product alone (oneDNN, on the calling thread inside a parallel region) into C's
// columns 0..n of rows ldc apart: one tile of a wider product (quantized weights as bf16 tiles).
void matmul_abt_bf16_library(const uint16_t* a16, const uint16_t* b, float* c, int64_t ldc,
                             int64_t m, int64_t n, int64_t k, float beta = 0.0f);
// True when the bf16 path runs in oneDNN; false when it widens to f32 for sgemm (no oneDNN).
bool bf16_matmul_native();

// Threads used by BLAS and by the OpenMP loops of the kernels (0 = all cores).
void set_compute_threads(int threads);
int compute_threads();

}  // namespace lorahub

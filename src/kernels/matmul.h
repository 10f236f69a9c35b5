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

// Threads used by BLAS and by the OpenMP loops of the kernels (0 = all cores).
void set_compute_threads(int threads);
int compute_threads();

}  // namespace lorahub

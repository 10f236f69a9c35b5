// C[m,n] = A[m,k] · B[n,k]ᵀ + beta·C for a few rows of A, A and B in bf16, f32 accumulation and
// output: the decoding-step product of matmul_abt_bf16 (kernels/matmul.h), with AVX512-BF16.
// Products of bf16 values are exact in f32, so against an f32 product of the same bf16 values
// only the order of the additions differs.
#pragma once
#include <cstdint>

namespace lorahub {

// True when this CPU has AVX512-BF16 (checked at run time: any x86-64 build has the kernel).
bool small_rows_bf16_available();

// Throws Error where small_rows_bf16_available() is false.
void small_rows_abt_bf16(const uint16_t* a, const uint16_t* b, float* c, int64_t m, int64_t n,
                         int64_t k, float beta);

}  // namespace lorahub

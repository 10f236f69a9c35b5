// The two loops of a decoding step's attention for one (sequence, head) over a bf16 KV cache read
// in place: the scores q · k_j, and the probability-weighted sum Σ_j p_j v_j. With AVX-512 (checked
// at run time) 16 keys at a time; elsewhere the plain loops of models/blocks.cpp run instead.
//
// The arithmetic is fixed, so that the kernel gives bit for bit what the plain loops that GCC
// vectorizes for AVX-512 give (the T5 generations of the bf16 path did not change with it):
//   score_j = (((0 + L_0) + L_1) + ... + L_31), where lane L_l = Σ_t k_j[32t + l] · q[32t + l],
//             accumulated by fused multiply-adds from 0 in t order;
//   out[c]  = Σ_j p_j · v_j[c] by fused multiply-adds from 0 in j order, keys with p_j = 0 skipped.
// dot_rows_bf16_reference and weighted_sum_bf16_reference spell that out (tests compare them).
#pragma once
#include <cstdint>

namespace lorahub {

// True when this CPU runs the kernels below (AVX512-F/BW) and head_dim (values per head) is
// one they take: a multiple of 32, at most 256.
bool decode_attention_bf16_available(int64_t head_dim);

// out[j] = q · k_j for keys k_j = k + j·stride (bf16 bits), j < count.
void dot_rows_bf16(const float* q, const uint16_t* k, int64_t stride, int64_t count,
                   int64_t head_dim, float* out);

// out[c] = Σ_j p[j] · v_j[c] (out is overwritten), v_j = v + j·stride, j < count.
void weighted_sum_bf16(const float* p, const uint16_t* v, int64_t stride, int64_t count,
                       int64_t head_dim, float* out);

// The same arithmetic in scalar code (any CPU; for tests).
void dot_rows_bf16_reference(const float* q, const uint16_t* k, int64_t stride, int64_t count,
                             int64_t head_dim, float* out);
void weighted_sum_bf16_reference(const float* p, const uint16_t* v, int64_t stride, int64_t count,
                                 int64_t head_dim, float* out);

}  // namespace lorahub

// Element-wise and row-wise kernels of the transformer blocks, fp32. Each matches the PyTorch
// expression named in its comment, evaluated in float32 as PyTorch does on the CPU.
#pragma once
#include <cstdint>
#include <string>

namespace lorahub {

// y[r,:] = x[r,:] · rsqrt(mean(x[r,:]²) + eps) · weight   (T5LayerNorm / LlamaRMSNorm)
void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps);

// In place, per row of n: softmax(x) with the row maximum subtracted first. Entries equal to
// -infinity (masked) get probability 0; a row that is entirely masked becomes all zeros.
void softmax_rows(float* x, int64_t rows, int64_t n);

// Natural log of softmax of one row of n logits (for cross-entropy): returns log Σ exp(x).
double log_sum_exp(const float* x, int64_t n);

enum class Activation { Relu, Gelu, GeluNew, Silu };

// transformers' ACT2FN names: "relu", "gelu", "gelu_new", "silu"/"swish". Throws Error otherwise.
Activation activation_from_name(const std::string& name);

// In place over n values.
void apply_activation(Activation act, float* x, int64_t n);

// x[i] *= y[i]  (gated feed-forward: act(gate) · up)
void multiply_inplace(float* x, const float* y, int64_t n);
// x[i] += y[i]  (residual connections)
void add_inplace(float* x, const float* y, int64_t n);
// x[i] *= s
void scale_inplace(float* x, float s, int64_t n);

// out[t,:] = table[ids[t],:] for t < count; throws Error for ids outside [0, rows).
void embedding_lookup(const float* table, int64_t rows, int64_t dim, const int32_t* ids,
                      int64_t count, float* out);

}  // namespace lorahub

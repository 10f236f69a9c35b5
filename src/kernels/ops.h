// Element-wise and row-wise kernels of the transformer blocks, fp32. Each matches the PyTorch
// expression named in its comment, evaluated in float32 as PyTorch does on the CPU.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

namespace lorahub {

// exp(x) in float32 within 2 ulp of std::exp (Cephes' expf: exp(x) = 2^n · e^r with
// n = round(x·log2 e), |r| <= ln2/2, e^r by a degree-7 polynomial), 0 below the smallest normal
// result (so masked scores of -inf give 0). Written without branches or calls so that loops over
// it vectorize: glibc declares its vector expf only under -ffast-math, and the scalar calls were
// a tenth of a generation's time (softmax, SiLU).
inline float exp_f32(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln 2 = hi + lo
  constexpr float kMin = -87.33654475f, kMax = 88.37626266f;        // ln FLT_MIN, ~ln FLT_MAX
  const bool underflow = !(x >= kMin);                              // also for NaN: none here
  x = std::min(std::max(x, kMin), kMax);
  const float n = std::floor(x * kLog2e + 0.5f);
  const float r = x - n * kLn2Hi - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const float scale = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return underflow ? 0.0f : p * scale;
}

// y[r,:] = x[r,:] · rsqrt(mean(x[r,:]²) + eps) · weight   (T5LayerNorm / LlamaRMSNorm)
void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps);

// In place, per row of n: softmax(x) with the row maximum subtracted first. Entries equal to
// -infinity (masked) get probability 0; a row that is entirely masked becomes all zeros.
void softmax_rows(float* x, int64_t rows, int64_t n);
// One row, on the calling thread (for code that is already inside a parallel loop).
void softmax_row(float* x, int64_t n);

// Natural log of softmax of one row of n logits (for cross-entropy): returns log Σ exp(x).
double log_sum_exp(const float* x, int64_t n);

enum class Activation { Relu, Gelu, GeluNew, Silu };

// transformers' ACT2FN names: "relu", "gelu", "gelu_new", "silu"/"swish". Throws Error otherwise.
Activation activation_from_name(const std::string& name);

// In place over n values.
void apply_activation(Activation act, float* x, int64_t n);

// x[i] = act(x[i]) · y[i] in one pass (gated feed-forward: act(gate) · up); the same values as
// apply_activation then multiply_inplace.
void activate_and_multiply(Activation act, float* x, const float* y, int64_t n);

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

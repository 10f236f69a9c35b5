#include "kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.h"
#include "core/simd.h"

namespace lorahub {

namespace {
// Below this many elements an OpenMP team costs more than it saves.
constexpr int64_t kParallelMin = 1 << 14;
}  // namespace

namespace {
LORAHUB_SIMD void rms_norm_row(const float* xr, const float* weight, float* yr, int64_t dim,
                               float eps) {
  // Wider than PyTorch's float sum (the difference is far below 1e-6), in SIMD lanes: the
  // sequential double sum did not vectorize (a latency-bound chain, 1.4 % of the T5 forward).
  double sum_sq = 0.0;
#pragma omp simd reduction(+ : sum_sq)
  for (int64_t i = 0; i < dim; ++i) sum_sq += static_cast<double>(xr[i]) * xr[i];
  const float variance = static_cast<float>(sum_sq / static_cast<double>(dim));
  const float inv = 1.0f / std::sqrt(variance + eps);
  for (int64_t i = 0; i < dim; ++i) yr[i] = weight[i] * (xr[i] * inv);
}
}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int64_t rows, int64_t dim, float eps) {
#pragma omp parallel for schedule(static) if (rows * dim > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) rms_norm_row(x + r * dim, weight, y + r * dim, dim, eps);
}

LORAHUB_SIMD void softmax_row(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();  // std::max_element does not vectorize
#pragma omp simd reduction(max : max)
  for (int64_t i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  if (max == -std::numeric_limits<float>::infinity()) {
    std::fill(x, x + n, 0.0f);
    return;
  }
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    x[i] = exp_f32(x[i] - max);
    sum += x[i];
  }
  const float inv = 1.0f / sum;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax_rows(float* x, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (rows * n > kParallelMin)
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, n);
}

double log_sum_exp(const float* x, int64_t n) {
  const float max = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - max);
  return max + std::log(sum);
}

Activation activation_from_name(const std::string& name) {
  if (name == "relu") return Activation::Relu;
  if (name == "gelu") return Activation::Gelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return Activation::GeluNew;
  if (name == "silu" || name == "swish") return Activation::Silu;
  fail("unsupported activation '{}' (supported: relu, gelu, gelu_new, silu)", name);
}

namespace {
float gelu_tanh(float x) {  // transformers NewGELUActivation
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  // 0.5·(1 + tanh u) = 1 / (1 + e^{-2u}): no cancellation, and exp_f32 vectorizes where
  // std::tanh does not.
  const float u = kSqrt2OverPi * (x + 0.044715f * x * x * x);
  return x / (1.0f + exp_f32(-2.0f * u));
}
float gelu_erf(float x) {
  return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
}
float silu(float x) {
  return x / (1.0f + exp_f32(-x));
}

template <typename F>
inline void map_range(float* x, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]);
}

// One chunk of apply_activation; a function of its own, called from the parallel loop, so that
// it is what the SIMD clones cover (core/simd.h).
LORAHUB_SIMD void activate_range(Activation act, float* x, int64_t n) {
  switch (act) {
    case Activation::Relu:
      return map_range(x, n, [](float v) { return v > 0.0f ? v : 0.0f; });
    // Lambdas, not the functions themselves: through a function pointer GCC does not
    // vectorize the loop (the call is inlined only after the vectorizer has run).
    case Activation::Gelu:
      return map_range(x, n, [](float v) { return gelu_erf(v); });
    case Activation::GeluNew:
      return map_range(x, n, [](float v) { return gelu_tanh(v); });
    case Activation::Silu:
      return map_range(x, n, [](float v) { return silu(v); });
  }
}

template <typename F>
inline void map_multiply_range(float* x, const float* __restrict y, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) x[i] = f(x[i]) * y[i];
}

LORAHUB_SIMD void activate_multiply_range(Activation act, float* x, const float* y, int64_t n) {
  switch (act) {
    case Activation::Relu:
      return map_multiply_range(x, y, n, [](float v) { return v > 0.0f ? v : 0.0f; });
    case Activation::Gelu:
      return map_multiply_range(x, y, n, [](float v) { return gelu_erf(v); });
    case Activation::GeluNew:
      return map_multiply_range(x, y, n, [](float v) { return gelu_tanh(v); });
    case Activation::Silu:
      return map_multiply_range(x, y, n, [](float v) { return silu(v); });
  }
}

constexpr int64_t kActivationChunk = 4096;
}  // namespace

void activate_and_multiply(Activation act, float* x, const float* y, int64_t n) {
  const int64_t chunks = (n + kActivationChunk - 1) / kActivationChunk;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kActivationChunk;
    activate_multiply_range(act, x + begin, y + begin, std::min(kActivationChunk, n - begin));
  }
}

void apply_activation(Activation act, float* x, int64_t n) {
  const int64_t chunks = (n + kActivationChunk - 1) / kActivationChunk;
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kActivationChunk;
    activate_range(act, x + begin, std::min(kActivationChunk, n - begin));
  }
}

void multiply_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] *= y[i];
}

void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void scale_inplace(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void embedding_lookup(const float* table, int64_t rows, int64_t dim, const int32_t* ids,
                      int64_t count, float* out) {
  for (int64_t t = 0; t < count; ++t) {
    check(ids[t] >= 0 && ids[t] < rows, "token id {} is outside the embedding table of {} rows",
          ids[t], rows);
    std::memcpy(out + t * dim, table + static_cast<int64_t>(ids[t]) * dim, dim * sizeof(float));
  }
}

}  // namespace lorahub

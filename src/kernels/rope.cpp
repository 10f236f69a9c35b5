#include "kernels/rope.h"

#include <cmath>

#include "core/error.h"

namespace lorahub {
namespace {

// transformers' _compute_llama3_parameters: long wavelengths are divided by the factor, short
// ones kept, and the band in between interpolated smoothly.
float llama3_scaled(float inv_freq, const RopeScaling& s) {
  const double pi = 3.14159265358979323846;
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  const double wavelen = 2 * pi / inv_freq;
  if (wavelen > low_wavelen) return static_cast<float>(inv_freq / s.factor);
  if (wavelen < high_wavelen) return inv_freq;
  const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                        (s.high_freq_factor - s.low_freq_factor);
  return static_cast<float>((1 - smooth) * inv_freq / s.factor + smooth * inv_freq);
}

}  // namespace

std::vector<float> rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& scaling) {
  check(head_dim > 0 && head_dim % 2 == 0, "rotary embedding needs an even head_dim, got {}",
        head_dim);
  check(theta > 0, "rope theta must be positive, got {}", theta);
  std::vector<float> inv(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[i] = 1.0f / std::pow(static_cast<float>(theta), exponent);
  }
  if (scaling.type.empty() || scaling.type == "default") return inv;
  check(scaling.factor > 0, "rope_scaling factor must be positive, got {}", scaling.factor);
  for (float& f : inv) {
    if (scaling.type == "linear")
      f = static_cast<float>(f / scaling.factor);
    else if (scaling.type == "llama3")
      f = llama3_scaled(f, scaling);
    else
      fail("rope_scaling type '{}' is not supported (linear and llama3 are)", scaling.type);
  }
  return inv;
}

void apply_rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int64_t* positions,
                const std::vector<float>& inv_freq) {
  const int64_t half = head_dim / 2;
  check(static_cast<int64_t>(inv_freq.size()) == half, "rope: {} frequencies for head_dim {}",
        inv_freq.size(), head_dim);
#pragma omp parallel for schedule(static) if (rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const float pos = static_cast<float>(positions[r]);
    std::vector<float> cos(half), sin(half);
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * inv_freq[i];
      cos[i] = std::cos(angle);
      sin[i] = std::sin(angle);
    }
    float* row = x + r * heads * head_dim;
    for (int64_t h = 0; h < heads; ++h) {
      float* v = row + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        // q·cos + rotate_half(q)·sin, rotate_half(q) = [−q2, q1]
        const float a = v[i], c = v[i + half];
        v[i] = a * cos[i] - c * sin[i];
        v[i + half] = c * cos[i] + a * sin[i];
      }
    }
  }
}

}  // namespace lorahub

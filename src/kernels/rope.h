// Rotary position embedding (RoPE) as transformers' Llama family applies it: the head is split in
// halves (rotate_half), element i pairs with element i + head_dim/2, and frequency i is
// inv_freq[i] = 1 / theta^(2i / head_dim), optionally rescaled (rope_scaling "linear", "llama3").
// Everything in f32 as PyTorch computes it: angle = float(position) · inv_freq, then cos, sin.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lorahub {

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 8192;                  // llama3
};

// inv_freq[head_dim / 2]. Throws Error for an unknown scaling type or an odd head_dim.
std::vector<float> rope_inv_freq(int64_t head_dim, double theta, const RopeScaling& scaling = {});

// In place on x[rows, heads · head_dim]: row r is the token at position positions[r].
void apply_rope(float* x, int64_t rows, int64_t heads, int64_t head_dim, const int64_t* positions,
                const std::vector<float>& inv_freq);

}  // namespace lorahub

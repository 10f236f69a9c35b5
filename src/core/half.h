// IEEE half and bfloat16 <-> float. Round-to-nearest-even, NaN kept quiet, as PyTorch does.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace lorahub {

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Bulk conversions; n elements.
void f16_to_f32(const uint16_t* src, float* dst, size_t n);
void bf16_to_f32(const uint16_t* src, float* dst, size_t n);
void f32_to_f16(const float* src, uint16_t* dst, size_t n);
void f32_to_bf16(const float* src, uint16_t* dst, size_t n);

// Whole buffers, for the bf16 fast path: `values` rounded to bf16, its f32 memory given back
// (the vector is left empty); and bf16 values widened to a new f32 vector.
std::vector<uint16_t> take_as_bf16(std::vector<float>& values);
std::vector<float> widen_bf16(const std::vector<uint16_t>& values);

}  // namespace lorahub

#include "kernels/dequant.h"

#include <cstring>

#include "core/error.h"
#include "core/half.h"

// gguf.quants computes d·q and then + m as two rounded f32 operations; a fused multiply-add
// would round once and differ in the last bit.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace lorahub {
namespace {

float read_f16(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

void dequantize_q4_0(const std::byte* block, float* out) {
  const float d = read_f16(block);
  const auto* q = reinterpret_cast<const uint8_t*>(block + 2);
  for (int j = 0; j < 16; ++j) {
    out[j] = d * static_cast<float>((q[j] & 0x0f) - 8);
    out[j + 16] = d * static_cast<float>((q[j] >> 4) - 8);
  }
}

void dequantize_q4_1(const std::byte* block, float* out) {
  const float d = read_f16(block);
  const float m = read_f16(block + 2);
  const auto* q = reinterpret_cast<const uint8_t*>(block + 4);
  for (int j = 0; j < 16; ++j) {
    out[j] = d * static_cast<float>(q[j] & 0x0f) + m;
    out[j + 16] = d * static_cast<float>(q[j] >> 4) + m;
  }
}

void dequantize_q8_0(const std::byte* block, float* out) {
  const float d = read_f16(block);
  const auto* q = reinterpret_cast<const int8_t*>(block + 2);
  for (int j = 0; j < 32; ++j) out[j] = static_cast<float>(q[j]) * d;
}

}  // namespace

int64_t block_bytes(BlockFormat format) {
  switch (format) {
    case BlockFormat::Q4_0:
      return 18;
    case BlockFormat::Q4_1:
      return 20;
    case BlockFormat::Q8_0:
      return 34;
  }
  fail("unknown block format");
}

void dequantize(BlockFormat format, const std::byte* src, float* dst, int64_t n) {
  check(n % kQuantBlock == 0, "dequantize: {} elements is not a multiple of {}", n, kQuantBlock);
  auto* kernel = format == BlockFormat::Q4_0   ? dequantize_q4_0
                 : format == BlockFormat::Q4_1 ? dequantize_q4_1
                                               : dequantize_q8_0;
  const int64_t stride = block_bytes(format);
  const int64_t blocks = n / kQuantBlock;
#pragma omp parallel for schedule(static) if (blocks > 4096)
  for (int64_t b = 0; b < blocks; ++b) kernel(src + b * stride, dst + b * kQuantBlock);
}

}  // namespace lorahub

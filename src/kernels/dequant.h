// Dequantization of ggml block formats to f32, bit-identical to the `gguf` Python package
// (gguf.quants.dequantize). Block layouts (32 elements per block, little-endian):
//   Q4_0: f16 d, 16 bytes of nibbles q          x = d · (q − 8)
//   Q4_1: f16 d, f16 m, 16 bytes of nibbles q   x = d · q + m
//   Q8_0: f16 d, 32 × int8 q                    x = d · q
// Nibbles: byte j of a block holds element j (low nibble) and element j + 16 (high nibble).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lorahub {

enum class BlockFormat { Q4_0, Q4_1, Q8_0 };

constexpr int64_t kQuantBlock = 32;
int64_t block_bytes(BlockFormat format);

// n must be a multiple of kQuantBlock; src holds n / kQuantBlock blocks.
void dequantize(BlockFormat format, const std::byte* src, float* dst, int64_t n);

}  // namespace lorahub

// Dequantization of ggml block formats to f32, bit-identical to the `gguf` Python package
// (gguf.quants.dequantize 0.19). A block of `elements` values is stored in `bytes` bytes,
// little-endian; f16 scales are IEEE halves (NaN, inf and subnormals decoded exactly).
//   legacy (32 per block):   x = d·q (Q4_0, Q5_0, Q8_0, IQ4_NL) or d·q + m (Q4_1, Q5_1)
//   k-quants (256 per block): super-block scale d (and min dmin) times 6/8-bit sub-block scales
//   IQ types (256 per block): lattice points from fixed grids (kernels/dequant_grids.h) with sign
//                             patterns, times sub-block scales
//   ternary TQ1_0/TQ2_0, and the FP4 formats MXFP4 (e8m0 scale) and NVFP4 (ue4m3 scales)
// Q8_K (llama.cpp's intermediate type, which gguf-py does not decode) follows ggml: f32 d, 256
// int8, x = d·q. The exact per-format layouts are documented at each kernel in dequant.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lorahub {

enum class BlockFormat {
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
  Q8_K,
  IQ2_XXS,
  IQ2_XS,
  IQ2_S,
  IQ3_XXS,
  IQ3_S,
  IQ1_S,
  IQ1_M,
  IQ4_NL,
  IQ4_XS,
  TQ1_0,
  TQ2_0,
  MXFP4,
  NVFP4,
};

struct BlockLayout {
  std::string_view name;
  int64_t elements;  // values per block
  int64_t bytes;     // bytes per block
};
const BlockLayout& block_layout(BlockFormat format);
inline int64_t block_bytes(BlockFormat format) {
  return block_layout(format).bytes;
}

// The block pieces the quantized products (kernels/quant_matmul.h) share with dequantization:
// element j of a 32-value nibble block (low nibbles of bytes 0..15, then their high nibbles), and
// the eight 6-bit (scale, min) pairs of Q4_K/Q5_K packed in 12 bytes.
inline int nibble32(const uint8_t* qs, int j) {
  return j < 16 ? qs[j] & 0x0f : qs[j - 16] >> 4;
}
void scale_min_k4(const uint8_t* s, uint8_t* sc, uint8_t* mn);

// n must be a multiple of the format's block; src holds n / elements blocks.
void dequantize(BlockFormat format, const std::byte* src, float* dst, int64_t n);

}  // namespace lorahub

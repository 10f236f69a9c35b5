// Matrix products on quantized weights, computed in their blocks: y = x · Wᵀ with W held as
// GGUF stores it (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, Q8_K) or as int8 per output
// channel (I8: symmetric, one f32 scale per row, made at load by quantize_rows_int8), never
// expanded to floats.
//
// How (the scheme of ggml's vec_dot kernels): each row of x is quantized on the fly to int8 in
// blocks of 32 values (scale d = max|x| / 127, as ggml's Q8_0 activations); each weight row is
// unpacked block by block into small signed integers q with an f32 scale per 4 values (a block's
// or sub-block's scale: Q6_K's sub-blocks are 16 values) and, for the formats with a minimum
// (Q4_1, Q5_1, Q4_K, Q5_K: x = s·q + m), the per-32 offsets m. Integer dot products of 4-value
// groups (AVX512-VNNI's vpdpbusd, unsigned × signed: the activations travel as q + 128, and the
// 128·Σq of the weights is subtracted exactly) are scaled and accumulated in f32; the offsets add
// m · d·Σq_x per block. The weight rows are unpacked into a per-thread buffer of a few KB and
// reused from L1 for every row of x, so memory traffic is the quantized bytes.
//
// I8 weights take the same per-32 activations on these kernels. One scale per activation row in
// one int8 level would let the integer sums run over the whole row (one vpdpbusd per 64 products
// instead of four operations), but it moved SmolLM2's BBH loss 3.9 % off the f32 path (outlier
// channels flatten the other values of a row to a few steps), against 1 % per 32 values: beyond
// the stated 2e-2. Which kernels run depends on the rows of x (QuantPath below): these up to
// kIntegerRowsMax rows; for more, I8 weights go to oneDNN's int8 matmul with x per row in two
// int8 levels (about 15 bits, int8_matmul.cpp) and the GGUF formats to dequantized f32 tiles.
//
// Error of these kernels against the f32 product of the dequantized weights: only the rounding of
// x to int8 per 32 values (half a step, d/2, per value), plus f32 summation order.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/dequant.h"

namespace lorahub {

enum class QuantFormat { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, Q8_K, I8 };

struct Int8Pack;  // I8 weights in oneDNN's blocked layout (int8_matmul.cpp)

struct QuantMatrix {
  QuantFormat format = QuantFormat::I8;
  int64_t rows = 0, cols = 0;    // [out, in], as a Linear weight
  std::vector<uint8_t> data;     // rows × row_bytes(), each row as the format stores it
  std::vector<float> row_scale;  // I8 only: x = q · row_scale[row]
  std::vector<int32_t> row_sum;  // I8 only: Σq of each row (oneDNN's path sends A as q + 128)
  // I8 only, where the build has oneDNN: the same int8 values reordered once (at quantization)
  // into the blocked layout of oneDNN's int8 kernels, which otherwise repack W on every call.
  std::shared_ptr<const Int8Pack> library_pack;
  // I8 only, optional: a second int8 level of the same weights, W ≈ s·(q₁ + q₂/254) per row
  // (residual: I8, row_scale = s/254, no residual of its own), about 15 bits instead of 7, for the
  // products whose weight rounding the model amplifies (quantize_rows_int8's two_levels).
  std::shared_ptr<const QuantMatrix> residual;
  int64_t row_bytes() const;
};

// The kernel format for a GGUF block format, or nullopt where there is no kernel (yet).
std::optional<QuantFormat> quant_format_for(BlockFormat format);
const char* quant_format_name(QuantFormat format);

// Symmetric int8 per output row: scale = max|w_row| / 127, q = round(w / scale). two_levels:
// plus the residual level q₂ = round((w - scale·q) / (scale / 254)) (|q₂| ≤ 127), QuantMatrix::
// residual, which every product then adds.
QuantMatrix quantize_rows_int8(const float* w, int64_t rows, int64_t cols, bool two_levels = false);
// Rows [row0, row0 + count) as f32 (what the product computes with, before x is quantized; both
// levels where the matrix has two).
void dequantize_rows(const QuantMatrix& m, int64_t row0, int64_t count, float* out);

// kScalar: the portable reference of the same arithmetic; kVnni: AVX512-VNNI (throws where the
// CPU lacks it); kDequantizedTiles: for many rows of A (prefill, scoring), where the per-32
// integer products are compute bound and no faster than f32 FMA, the weights are dequantized a
// tile of rows at a time (512 KB of f32, reused for every row of A) into sgemm: the weights stay
// quantized in memory, and A is not rounded. kLibraryInt8 (I8 weights only, builds with oneDNN):
// oneDNN's u8 × s8 matmul, A quantized per row in two int8 levels (about 15 bits; twice the
// integer products, kernels/int8_matmul.cpp). kAuto: up to kIntegerRowsMax rows (decoding) the
// integer products, VNNI where the CPU has it (checked at run time); above, I8 weights take
// oneDNN's int8 matmul from kLibraryRowsMin rows (below it the per-call weight packing of oneDNN
// costs more than the products save) or the f32 tiles, the block formats kBf16Tiles where the bf16
// product is native (bf16_matmul_native), else the f32 tiles. kBf16Tiles: tiles of weight rows
// dequantized and rounded to bf16 (up to 2 MB each), against A rounded to bf16, in oneDNN's bf16
// matmul: each value within 2^-9 relative, so each product within 2^-8 of |w·x|, inside the
// integer path's per-32 bound (d/2 = max|x| / 254 per activation).
enum class QuantPath { kAuto, kScalar, kVnni, kDequantizedTiles, kLibraryInt8, kBf16Tiles };
inline constexpr int64_t kIntegerRowsMax = 16;
inline constexpr int64_t kLibraryRowsMin = 17;
bool quant_vnni_available();
bool int8_library_available();  // kLibraryInt8: the build has oneDNN

// C[m, b.rows] = A[m, b.cols] · Bᵀ + beta·C (beta 0 never reads C).
void matmul_abt_quant(const float* a, const QuantMatrix& b, float* c, int64_t m, float beta = 0.0f,
                      QuantPath path = QuantPath::kAuto);
// Several products of the same rows of A (a decoding step's q, k and v, or gate and up):
// c_p[m, b_p.rows] = A[m, k] · b_pᵀ, every b_p with k columns. Up to kIntegerRowsMax rows on the
// direct VNNI kernels, A is quantized once and all the products' weight rows are split over the
// threads in one parallel region (one fork-join instead of one per product); the numbers are
// those of matmul_abt_quant on each. Otherwise (more rows, other paths): matmul_abt_quant on each.
struct QuantProduct {
  const QuantMatrix* b;
  float* c;
};
void matmul_abt_quant_many(const float* a, int64_t m, const std::vector<QuantProduct>& products,
                           QuantPath path = QuantPath::kAuto);
// kLibraryInt8 itself (int8_matmul.cpp), and the packing of I8 weights for it (no-op without
// oneDNN; quantize_rows_int8 calls it).
void matmul_int8_library(const float* a, const QuantMatrix& b, float* c, int64_t m, float beta);
void pack_int8_for_library(QuantMatrix& m);

}  // namespace lorahub

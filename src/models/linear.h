// Every linear layer of every model goes through linear_forward(): y = W x (+ b) + Σ scale·B(A x),
// the LoRA deltas applied as an unmerged side path (llama.cpp's build_lora_mm). merge_lora_into()
// folds the same deltas into W, as PEFT's merge_and_unload does; a test proves both agree.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/quant_matmul.h"
#include "models/lora_delta.h"

namespace lorahub {

struct Linear {
  std::string name;  // HF module path, the LoraMap key: "encoder.block.0.layer.0.SelfAttention.q"
  int64_t in = 0, out = 0;
  std::vector<float> weight;  // [out, in] row-major, as PyTorch stores nn.Linear.weight
  std::vector<float> bias;    // [out] or empty
  // Position among the model's linear layers (Model::linear_layers()): where a BoundLora keeps
  // this layer's deltas. -1 = not a LoRA target.
  int32_t index = -1;
  // The bf16 fast path (LoadOptions::bf16): W held as bf16 [out, in] instead of `weight`, which is
  // then empty. Half the memory, and oneDNN's AVX512-BF16 products run about 2x the f32 ones.
  // Shared, never written in place: a tied LM head views the embedding's table (weights.h), and a
  // merge gives the layer new storage.
  std::shared_ptr<const std::vector<uint16_t>> weight_bf16;
  // The quantized paths (LoadOptions::int8, LoadOptions::quantized): W as int8 per output channel
  // or as the GGUF file's blocks, multiplied in place (kernels/quant_matmul.h); the other weight
  // fields are then empty. Shared and never written, as weight_bf16.
  std::shared_ptr<const QuantMatrix> weight_q;

  bool has_weight() const {
    return !weight.empty() || weight_bf16 != nullptr || weight_q != nullptr;
  }
};

// y[rows, out] = x[rows, in] · Wᵀ + b, plus Σ scale · (x Aᵀ) Bᵀ on the rows of each span of
// `lora` with that span's deltas for this layer. The base product runs once for all rows, the
// side path once per span. With bf16 weights, x is rounded to bf16 for the base product (f32
// accumulation); with quantized weights (weight_q), up to kIntegerRowsMax rows (decoding steps)
// to int8 per 32 values for the integer kernels; more rows multiply dequantized f32 weight tiles
// (GGUF blocks: x stays f32) or, with int8 weights (I8), go to oneDNN's int8 matmul with x per
// row in two int8 levels (about 15 bits; kernels/quant_matmul.h); bias and the LoRA side path
// stay f32.
// `x16`: x already rounded to bf16 (bf16_input), for layers with bf16 weights; else nullptr.
void linear_forward(const Linear& layer, const float* x, int64_t rows, float* y,
                    const LoraRows& lora = {}, const uint16_t* x16 = nullptr);

// x[rows, layer.in] rounded to bf16 once, for several layers that read the same input (q, k, v;
// gate and up): linear_forward(..., x16) then skips its own rounding pass. Empty (and
// bf16_data() nullptr) unless the layer holds bf16 weights.
struct Bf16Input {
  std::unique_ptr<uint16_t[]> values;
  const uint16_t* data() const { return values.get(); }
};
Bf16Input bf16_input(const Linear& layer, const float* x, int64_t rows);

// linear_forward of several layers over the same x (q, k, v; gate, up): ys[i] for layers[i], the
// same numbers. Quantized layers share one quantization of x and one parallel region
// (matmul_abt_quant_many): decoding steps pay one thread fork-join instead of one per layer.
void linear_forward_many(const std::vector<const Linear*>& layers, const float* x, int64_t rows,
                         const std::vector<float*>& ys, const LoraRows& lora = {});

// Moves the layer to bf16 weights (round to nearest even, as torch's .to(bfloat16)).
void convert_to_bf16(Linear& layer);
// W as f32 values, whichever way the layer holds it.
std::vector<float> weight_f32(const Linear& layer);

// The deltas registered under layer.name in `lora` (or nullptr), after checking their shapes
// against the layer. Throws Error naming the layer on a shape mismatch.
const std::vector<LoraDelta>* checked_deltas(const Linear& layer, const LoraMap& lora);

// The router registered under layer.name in `routers` (or nullptr), after checking its experts'
// shapes, prototypes, top_k and temperature. Throws Error naming the layer otherwise.
const LoraRouter* checked_router(const Linear& layer, const LoraRouterMap& routers);

// y[rows, out] += the routed mixture of `router` for each row of x[rows, in] (lora_delta.h).
void add_routed_lora(const LoraRouter& router, const float* x, int64_t rows, float* y);

// `lora` bound to this one layer (its index becomes 0): for code and tests that run one layer.
// The map must outlive the binding.
BoundLora bind_to_layer(Linear& layer, const LoraMap& lora);

// W += scale · B · A for each delta of this layer in `lora` (if any).
void merge_lora_into(Linear& layer, const LoraMap& lora);

}  // namespace lorahub

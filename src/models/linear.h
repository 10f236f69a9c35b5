// Every linear layer of every model goes through linear_forward(): y = W x (+ b) + Σ scale·B(A x),
// the LoRA deltas applied as an unmerged side path (llama.cpp's build_lora_mm). merge_lora_into()
// folds the same deltas into W, as PEFT's merge_and_unload does; a test proves both agree.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/lora_delta.h"

namespace lorahub {

struct Linear {
  std::string name;  // HF module path, the LoraMap key: "encoder.block.0.layer.0.SelfAttention.q"
  int64_t in = 0, out = 0;
  std::vector<float> weight;  // [out, in] row-major, as PyTorch stores nn.Linear.weight
  std::vector<float> bias;    // [out] or empty
  const std::vector<LoraDelta>* lora = nullptr;  // set by attach_lora(); not owned
};

// y[rows, out] = x[rows, in] · Wᵀ + b + Σ scale · (x Aᵀ) Bᵀ
void linear_forward(const Linear& layer, const float* x, int64_t rows, float* y);

// Points layer.lora at the deltas registered under layer.name (or nullptr), after checking
// their shapes against the layer. Throws Error naming the layer on a shape mismatch.
void attach_lora(Linear& layer, const LoraMap* lora);

// W += scale · B · A for each delta of this layer in `lora` (if any).
void merge_lora_into(Linear& layer, const LoraMap& lora);

}  // namespace lorahub

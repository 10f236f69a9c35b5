// The LoRA side path as the models see it. Every linear layer of every model goes through one
// function (models/linear.h) that computes  y = W x + Σ scaleᵢ · Bᵢ (Aᵢ x)  using the deltas
// registered for that layer here. The lora layer builds a LoraMap (compose.h); models only read it.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace lorahub {

struct LoraDelta {
  std::vector<float> A;  // [r, in] row-major (PEFT lora_A.weight)
  std::vector<float> B;  // [out, r] row-major (PEFT lora_B.weight)
  int64_t r = 0, in = 0, out = 0;
  float scale = 1.0f;  // lora_alpha / r, or lora_alpha / sqrt(r) with rslora
};

// Keyed by the HF module path of the linear layer, without PEFT's "base_model.model." prefix
// and without ".weight": "encoder.block.0.layer.0.SelfAttention.q", "model.layers.3.self_attn.q_proj".
using LoraMap = std::unordered_map<std::string, std::vector<LoraDelta>>;

}  // namespace lorahub

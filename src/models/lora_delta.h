// The LoRA side path as the models see it. Every linear layer of every model goes through one
// function (models/linear.h) that computes  y = W x + Σ scaleᵢ · Bᵢ (Aᵢ x)  using the deltas
// registered for that layer here. The lora layer builds a LoraMap (compose.h); models only read it.
//
// Models never hold an adapter: a LoraMap is bound to a model once (Model::bind_lora checks its
// targets and shapes and indexes it by layer) and every call says which bound adapter each of
// its sequences runs with (SequenceLora), so one loaded model serves many adapters at once, and
// one batch may mix them (the CPU counterpart of Punica/S-LoRA's SGMV: the base products once
// for all rows, the low-rank path per group of rows).
#pragma once
#include <cstdint>
#include <memory>
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
// and without ".weight": "encoder.block.0.layer.0.SelfAttention.q",
// "model.layers.3.self_attn.q_proj".
using LoraMap = std::unordered_map<std::string, std::vector<LoraDelta>>;

// A LoRA mixture routed per token (Arrow, Ostapenko et al. 2024; PEFT's ArrowLoraLinearLayer)
// for one layer: each token x takes the top_k experts of highest |x · prototypeₑ| and adds
//   Σₑ softmax(|x · pₑ| / temperature over those k)ₑ · scaleₑ · Bₑ (Aₑ x).
// It depends on the token, so it cannot be merged into W: it runs only as a side path.
struct LoraRouter {
  std::vector<LoraDelta> experts;  // same in/out for all
  std::vector<float> prototypes;   // [experts, in] row-major, unit vectors (or 0)
  int64_t top_k = 1;               // 1 <= top_k <= experts
  float temperature = 1.0f;        // > 0
};
// Keyed as LoraMap.
using LoraRouterMap = std::unordered_map<std::string, LoraRouter>;

// A LoraMap checked against one model and indexed by the model's linear layers (Linear::index):
// what a forward looks up per layer. Keeps the map alive.
struct BoundLora {
  std::shared_ptr<const LoraMap> map;
  std::vector<const std::vector<LoraDelta>*> by_layer;  // nullptr: the layer has no delta
  // A routed adapter (Model::bind_router) instead: its routers by layer (nullptr: none).
  std::shared_ptr<const LoraRouterMap> router_map;
  std::vector<const LoraRouter*> routers;

  const LoraRouter* router(int32_t layer_index) const {
    return layer_index >= 0 && static_cast<size_t>(layer_index) < routers.size()
               ? routers[static_cast<size_t>(layer_index)]
               : nullptr;
  }

  const std::vector<LoraDelta>* deltas(int32_t layer_index) const {
    return layer_index >= 0 && static_cast<size_t>(layer_index) < by_layer.size()
               ? by_layer[static_cast<size_t>(layer_index)]
               : nullptr;
  }
};

// The adapter of each sequence of a call: empty = none, one entry = the same for all
// sequences, else one per sequence (nullptr = the base model). Not owned.
using SequenceLora = std::vector<const BoundLora*>;

// The adapter of a range of packed activation rows [begin, end).
struct LoraSpan {
  int64_t begin = 0, end = 0;
  const BoundLora* lora = nullptr;
};
// What a linear layer's side path runs on: spans in row order, rows without LoRA left out.
using LoraRows = std::vector<LoraSpan>;

// The spans of a forward whose sequence b owns rows_per_sequence[b] consecutive rows;
// consecutive sequences with the same adapter share one span.
LoraRows lora_rows(const SequenceLora& lora, const std::vector<int64_t>& rows_per_sequence);

}  // namespace lorahub

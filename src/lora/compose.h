// LoraHub composition (DESIGN §1.2): for weights w, every adapter tensor becomes Σᵢ wᵢ·Tᵢ,
// lora_A and lora_B alike, so a target's update is scale·(Σ wᵢBᵢ)(Σ wᵢAᵢ), cross terms
// included. It is not Σ wᵢBᵢAᵢ. The scale of the modules is kept.
#pragma once
#include <vector>

#include "lora/module_set.h"
#include "models/lora_delta.h"

namespace lorahub {

// Σ wᵢ·Tᵢ for every tensor, in float32 and in module order, as the reference's torch code
// accumulates it. The result has the first module's path, config and keys.
// Throws Error when w has the wrong length or a non-finite value.
LoraModule compose_module(const ModuleSet& set, const std::vector<double>& w);

// The composed adapter as the models' unmerged side path: one delta per target layer.
LoraMap compose(const ModuleSet& set, const std::vector<double>& w);

// A single module as a LoraMap (e.g. a learned adapter loaded for generate/score).
LoraMap to_lora_map(const LoraModule& module);

// Throws Error naming `what` when w is empty or holds NaN/inf.
void check_weights(const std::vector<double>& w, const char* what);

}  // namespace lorahub

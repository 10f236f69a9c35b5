// Arrow routing (Ostapenko et al. 2024, "Towards Modular LLMs by Building and Reusing a Library
// of LoRAs"), with the semantics of PEFT's ArrowConfig / create_arrow_model: a library of LoRA
// modules used as experts, chosen per token and per layer without any training.
//   prototype of module e at a layer: the top right singular vector of Bₑ·Aₑ (sign-free);
//   token x: the top_k modules of highest |x · pₑ|, mixed by softmax(|x · pₑ| / temperature);
//   GenKnowSub (Bhardwaj et al. 2025), optional: before the prototypes, every task module's A and
//   B lose the mean A and the mean B of the "general" modules (as PEFT subtracts them: the
//   factors, not the products).
// The result is a LoraRouterMap (models/lora_delta.h) for Model::bind_router: it cannot be
// merged, since the mixture depends on the token.
#pragma once
#include <cstdint>

#include "lora/module_set.h"
#include "models/lora_delta.h"

namespace lorahub {

struct ArrowOptions {
  int64_t top_k = 3;         // PEFT's default; at most the number of task modules
  double temperature = 1.0;  // router_temperature, > 0
};

// The router over `tasks` (a validated pool), GenKnowSub with `general` when it is non-null.
// Prototypes are exact: an SVD in double precision of the rank-r factors (PEFT approximates the
// same vector by 15 power iterations from a random start; both agree when the top singular value
// stands clear of the next). Throws Error for a top_k outside [1, modules], a non-positive
// temperature, or general modules that differ from the task modules in keys or shapes.
LoraRouterMap arrow_router(const ModuleSet& tasks, const ModuleSet* general,
                           const ArrowOptions& options);

// The top right singular vector (unit norm; 0 when B·A is 0) of B·A, for A [r, in] and
// B [out, r] row-major, without forming B·A: A = UΣVᵀ, then the top right singular vector z of
// B·U·Σ (out x r) gives V·z.
std::vector<float> top_right_singular_vector(const std::vector<float>& A,
                                             const std::vector<float>& B, int64_t r, int64_t in,
                                             int64_t out);

}  // namespace lorahub

#pragma once
// A LoRA module with one target layer "enc.q" of [out, in] at rank r, scale 2, values drawn for
// the seed: the tiny module that the lora/ unit tests compose, combine and route.
#include <cstdint>
#include <random>
#include <string>
#include <utility>

#include "lora/module_set.h"
#include "support/random_values.h"

namespace lorahub::test_support {

inline LoraModule one_layer_module(const std::string& path, unsigned seed, int64_t r, int64_t in,
                                   int64_t out) {
  std::mt19937 rng(seed);
  LoraModule m;
  m.path = path;
  m.config.r = r;
  m.config.lora_alpha = 2.0 * static_cast<double>(r);
  m.config.target_modules = {"q"};
  for (bool is_a : {true, false}) {
    LoraTensor t;
    t.layer = "enc.q";
    t.is_a = is_a;
    t.key = std::string("base_model.model.enc.q.lora_") + (is_a ? "A" : "B") + ".weight";
    t.shape = is_a ? Shape{r, in} : Shape{out, r};
    t.scale = 2.0f;
    t.values = random_values(static_cast<size_t>(shape_numel(t.shape)), rng, 0.5f);
    m.tensors.push_back(std::move(t));
  }
  return m;
}

}  // namespace lorahub::test_support

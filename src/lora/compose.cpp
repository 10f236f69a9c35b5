#include "lora/compose.h"

#include <cmath>

#include "core/error.h"
#include "core/half.h"

namespace lorahub {

void check_weights(const std::vector<double>& w, const char* what) {
  check(!w.empty(), "{}: no weights", what);
  for (size_t i = 0; i < w.size(); ++i)
    check(std::isfinite(w[i]), "{}: weight {} is {} (weights must be finite numbers)", what, i,
          w[i]);
}

LoraModule compose_module(const ModuleSet& set, const std::vector<double>& w) {
  check(w.size() == set.size(), "compose: {} weights for {} modules", w.size(), set.size());
  check_weights(w, "compose");
  LoraModule out = set[0];
  for (size_t t = 0; t < out.tensors.size(); ++t) {
    LoraTensor& tensor = out.tensors[t];
    tensor.values = tensor.f32();  // the composed adapter is f32 whatever the pool holds
    tensor.bf16.clear();
    std::vector<float>& acc = tensor.values;
    // The reference multiplies each f32 tensor by a Python float (torch rounds it to f32) and
    // adds in module order; doing the same keeps us bit-close to it.
    const float w0 = static_cast<float>(w[0]);
    for (float& v : acc) v *= w0;
    for (size_t i = 1; i < set.size(); ++i) {
      const float wi = static_cast<float>(w[i]);
      const LoraTensor& src = set[i].tensors[t];
      if (src.bf16.empty()) {
        for (size_t k = 0; k < acc.size(); ++k) acc[k] += wi * src.values[k];
      } else {
        for (size_t k = 0; k < acc.size(); ++k) acc[k] += wi * bf16_to_f32(src.bf16[k]);
      }
    }
  }
  return out;
}

LoraMap to_lora_map(const LoraModule& module) {
  // Collect A and B per layer first: a file may list them in any order.
  struct Pair {
    const LoraTensor* a = nullptr;
    const LoraTensor* b = nullptr;
  };
  std::unordered_map<std::string, Pair> pairs;
  std::vector<std::string> order;
  for (const LoraTensor& t : module.tensors) {
    auto [it, fresh] = pairs.try_emplace(t.layer);
    if (fresh) order.push_back(t.layer);
    (t.is_a ? it->second.a : it->second.b) = &t;
  }
  LoraMap map;
  for (const std::string& layer : order) {
    const Pair& p = pairs[layer];
    check(p.a && p.b, "{}: layer '{}' has lora_{} but no lora_{}", module.path, layer,
          p.a ? "A" : "B", p.a ? "B" : "A");
    check(p.a->shape.size() == 2 && p.b->shape.size() == 2 && p.a->shape[0] == p.b->shape[1],
          "{}: layer '{}': lora_A {} and lora_B {} do not fit together", module.path, layer,
          shape_str(p.a->shape), shape_str(p.b->shape));
    LoraDelta d;
    d.r = p.a->shape[0];
    d.in = p.a->shape[1];
    d.out = p.b->shape[0];
    d.A = p.a->f32();
    d.B = p.b->f32();
    d.scale = p.a->scale;
    map[layer].push_back(std::move(d));
  }
  return map;
}

LoraMap compose(const ModuleSet& set, const std::vector<double>& w) {
  return to_lora_map(compose_module(set, w));
}

}  // namespace lorahub

#include "models/linear.h"

#include "core/error.h"
#include "core/half.h"
#include "kernels/matmul.h"

namespace lorahub {

namespace {
void check_delta(const Linear& layer, const LoraDelta& d) {
  check(d.in == layer.in && d.out == layer.out,
        "LoRA delta for '{}' is {}x{} (out x in) but the layer is {}x{}", layer.name, d.out, d.in,
        layer.out, layer.in);
  check(static_cast<int64_t>(d.A.size()) == d.r * d.in &&
            static_cast<int64_t>(d.B.size()) == d.out * d.r,
        "LoRA delta for '{}': A or B does not hold r={} x shape values", layer.name, d.r);
}

const std::vector<LoraDelta>* find_deltas(const Linear& layer, const LoraMap* lora) {
  if (lora == nullptr) return nullptr;
  auto it = lora->find(layer.name);
  return it == lora->end() ? nullptr : &it->second;
}
}  // namespace

void linear_forward(const Linear& layer, const float* x, int64_t rows, float* y,
                    const LoraRows& lora) {
  if (layer.weight_bf16 == nullptr)
    matmul_abt(x, layer.weight.data(), y, rows, layer.out, layer.in);
  else
    matmul_abt_bf16(x, layer.weight_bf16->data(), y, rows, layer.out, layer.in);
  if (!layer.bias.empty()) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < layer.out; ++o) y[r * layer.out + o] += layer.bias[o];
  }
  std::vector<float> ax;
  for (const LoraSpan& span : lora) {
    const auto* deltas = span.lora->deltas(layer.index);
    if (deltas == nullptr) continue;
    const int64_t n = span.end - span.begin;
    const float* xs = x + span.begin * layer.in;
    float* ys = y + span.begin * layer.out;
    for (const LoraDelta& d : *deltas) {
      ax.resize(static_cast<size_t>(n * d.r));
      matmul_abt(xs, d.A.data(), ax.data(), n, d.r, d.in);        // [n, r] = x Aᵀ
      for (float& v : ax) v *= d.scale;                           // scale the small side
      matmul_abt(ax.data(), d.B.data(), ys, n, d.out, d.r, 1.0f);  // y += (s·x Aᵀ) Bᵀ
    }
  }
}

void convert_to_bf16(Linear& layer) {
  if (!layer.weight.empty())
    layer.weight_bf16 = std::make_shared<const std::vector<uint16_t>>(take_as_bf16(layer.weight));
}

std::vector<float> weight_f32(const Linear& layer) {
  return layer.weight_bf16 == nullptr ? layer.weight : widen_bf16(*layer.weight_bf16);
}

const std::vector<LoraDelta>* checked_deltas(const Linear& layer, const LoraMap& lora) {
  const auto* deltas = find_deltas(layer, &lora);
  if (deltas)
    for (const LoraDelta& d : *deltas) check_delta(layer, d);
  return deltas;
}

BoundLora bind_to_layer(Linear& layer, const LoraMap& lora) {
  layer.index = 0;
  return BoundLora{std::shared_ptr<const LoraMap>(std::shared_ptr<void>(), &lora),
                   {checked_deltas(layer, lora)}};
}

void merge_lora_into(Linear& layer, const LoraMap& lora) {
  const auto* deltas = find_deltas(layer, &lora);
  if (deltas == nullptr) return;
  // bf16 weights: merged in f32 and rounded once, as PEFT merging into a bf16 model does.
  const bool bf16 = layer.weight_bf16 != nullptr;
  if (bf16) layer.weight = weight_f32(layer);
  for (const LoraDelta& d : *deltas) {
    check_delta(layer, d);
    std::vector<float> scaled_b(d.B);
    for (float& v : scaled_b) v *= d.scale;
    matmul_ab(scaled_b.data(), d.A.data(), layer.weight.data(), d.out, d.in, d.r, 1.0f);
  }
  if (bf16) convert_to_bf16(layer);
}

}  // namespace lorahub

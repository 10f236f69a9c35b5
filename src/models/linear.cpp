#include "models/linear.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

// y += b, then the LoRA side path: what linear_forward adds to the base product.
void add_bias_and_lora(const Linear& layer, const float* x, int64_t rows, float* y,
                       const LoraRows& lora) {
  if (!layer.bias.empty()) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < layer.out; ++o) y[r * layer.out + o] += layer.bias[o];
  }
  std::vector<float> ax;
  for (const LoraSpan& span : lora) {
    const int64_t n = span.end - span.begin;
    const float* xs = x + span.begin * layer.in;
    float* ys = y + span.begin * layer.out;
    if (const LoraRouter* router = span.lora->router(layer.index))
      add_routed_lora(*router, xs, n, ys);
    const auto* deltas = span.lora->deltas(layer.index);
    if (deltas == nullptr) continue;
    for (const LoraDelta& d : *deltas) {
      ax.resize(static_cast<size_t>(n * d.r));
      matmul_abt(xs, d.A.data(), ax.data(), n, d.r, d.in);         // [n, r] = x Aᵀ
      for (float& v : ax) v *= d.scale;                            // scale the small side
      matmul_abt(ax.data(), d.B.data(), ys, n, d.out, d.r, 1.0f);  // y += (s·x Aᵀ) Bᵀ
    }
  }
}
}  // namespace

Bf16Input bf16_input(const Linear& layer, const float* x, int64_t rows) {
  Bf16Input in;
  if (layer.weight_bf16 == nullptr || rows == 0) return in;
  const auto n = static_cast<size_t>(rows * layer.in);
  in.values = std::make_unique_for_overwrite<uint16_t[]>(n);
  f32_to_bf16(x, in.values.get(), n);
  return in;
}

void linear_forward(const Linear& layer, const float* x, int64_t rows, float* y,
                    const LoraRows& lora, const uint16_t* x16) {
  if (layer.weight_q != nullptr)
    matmul_abt_quant(x, *layer.weight_q, y, rows);
  else if (layer.weight_bf16 != nullptr && x16 != nullptr)
    matmul_abt_bf16(x16, layer.weight_bf16->data(), y, rows, layer.out, layer.in);
  else if (layer.weight_bf16 != nullptr)
    matmul_abt_bf16(x, layer.weight_bf16->data(), y, rows, layer.out, layer.in);
  else
    matmul_abt(x, layer.weight.data(), y, rows, layer.out, layer.in);
  add_bias_and_lora(layer, x, rows, y, lora);
}

void linear_forward_many(const std::vector<const Linear*>& layers, const float* x, int64_t rows,
                         const std::vector<float*>& ys, const LoraRows& lora) {
  check(layers.size() == ys.size(), "linear_forward_many: {} layers, {} outputs", layers.size(),
        ys.size());
  bool quantized = true;
  for (const Linear* l : layers) quantized = quantized && l->weight_q != nullptr;
  if (!quantized) {
    // x rounded to bf16 once for every layer with bf16 weights (nothing otherwise).
    const Bf16Input x16 = layers.empty() ? Bf16Input{} : bf16_input(*layers[0], x, rows);
    for (size_t i = 0; i < layers.size(); ++i)
      linear_forward(*layers[i], x, rows, ys[i], lora,
                     layers[i]->weight_bf16 != nullptr ? x16.data() : nullptr);
    return;
  }
  std::vector<QuantProduct> products;
  for (size_t i = 0; i < layers.size(); ++i) products.push_back({layers[i]->weight_q.get(), ys[i]});
  matmul_abt_quant_many(x, rows, products);
  for (size_t i = 0; i < layers.size(); ++i) add_bias_and_lora(*layers[i], x, rows, ys[i], lora);
}

void convert_to_bf16(Linear& layer) {
  if (!layer.weight.empty())
    layer.weight_bf16 = std::make_shared<const std::vector<uint16_t>>(take_as_bf16(layer.weight));
}

std::vector<float> weight_f32(const Linear& layer) {
  if (layer.weight_q != nullptr) {
    std::vector<float> w(static_cast<size_t>(layer.out * layer.in));
    dequantize_rows(*layer.weight_q, 0, layer.out, w.data());
    return w;
  }
  return layer.weight_bf16 == nullptr ? layer.weight : widen_bf16(*layer.weight_bf16);
}

const std::vector<LoraDelta>* checked_deltas(const Linear& layer, const LoraMap& lora) {
  const auto* deltas = find_deltas(layer, &lora);
  if (deltas)
    for (const LoraDelta& d : *deltas) check_delta(layer, d);
  return deltas;
}

const LoraRouter* checked_router(const Linear& layer, const LoraRouterMap& routers) {
  auto it = routers.find(layer.name);
  if (it == routers.end()) return nullptr;
  const LoraRouter& r = it->second;
  const auto experts = static_cast<int64_t>(r.experts.size());
  check(experts > 0 && r.top_k >= 1 && r.top_k <= experts,
        "router for '{}': top_k {} must be in [1, {}] (its experts)", layer.name, r.top_k, experts);
  check(r.temperature > 0 && std::isfinite(r.temperature),
        "router for '{}': temperature {} must be positive", layer.name, r.temperature);
  check(static_cast<int64_t>(r.prototypes.size()) == experts * layer.in,
        "router for '{}': {} prototype values, expected {} experts x {}", layer.name,
        r.prototypes.size(), experts, layer.in);
  for (const LoraDelta& d : r.experts) check_delta(layer, d);
  return &r;
}

namespace {
// Per token, the top_k experts by |x · pₑ| and their softmax(|x · pₑ| / T) coefficients
// (0 for the others), as PEFT's topk + scatter(-inf) + softmax computes them: [rows, experts].
std::vector<float> routing_coefficients(const LoraRouter& r, const float* x, int64_t rows,
                                        int64_t in) {
  const auto experts = static_cast<int64_t>(r.experts.size());
  std::vector<float> sim(static_cast<size_t>(rows * experts));
  matmul_abt(x, r.prototypes.data(), sim.data(), rows, experts, in);
  std::vector<float> coeff(sim.size(), 0.0f);
  std::vector<int64_t> order(static_cast<size_t>(experts));
  for (int64_t t = 0; t < rows; ++t) {
    float* s = sim.data() + t * experts;
    for (int64_t e = 0; e < experts; ++e) s[e] = std::fabs(s[e]);
    std::iota(order.begin(), order.end(), 0);
    // Ties go to the lower index, as torch.topk's CPU kernel picks them.
    std::partial_sort(order.begin(), order.begin() + r.top_k, order.end(),
                      [&](int64_t a, int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    const float top = s[order[0]];
    float sum = 0.0f;
    float* c = coeff.data() + t * experts;
    for (int64_t j = 0; j < r.top_k; ++j) {
      const int64_t e = order[static_cast<size_t>(j)];
      c[e] = std::exp((s[e] - top) / r.temperature);
      sum += c[e];
    }
    for (int64_t j = 0; j < r.top_k; ++j) c[order[static_cast<size_t>(j)]] /= sum;
  }
  return coeff;
}
}  // namespace

void add_routed_lora(const LoraRouter& router, const float* x, int64_t rows, float* y) {
  const int64_t in = router.experts[0].in, out = router.experts[0].out;
  const auto experts = static_cast<int64_t>(router.experts.size());
  const std::vector<float> coeff = routing_coefficients(router, x, rows, in);
  // Each expert runs on the rows routed to it only (gathered), so a token costs top_k low-rank
  // products, not one per expert.
  std::vector<int64_t> picked;
  std::vector<float> xs, ax, dy;
  for (int64_t e = 0; e < experts; ++e) {
    const LoraDelta& d = router.experts[static_cast<size_t>(e)];
    picked.clear();
    for (int64_t t = 0; t < rows; ++t)
      if (coeff[t * experts + e] != 0.0f) picked.push_back(t);
    if (picked.empty()) continue;
    const auto n = static_cast<int64_t>(picked.size());
    xs.resize(static_cast<size_t>(n * in));
    for (int64_t i = 0; i < n; ++i) std::copy_n(x + picked[i] * in, in, xs.data() + i * in);
    ax.resize(static_cast<size_t>(n * d.r));
    matmul_abt(xs.data(), d.A.data(), ax.data(), n, d.r, in);  // [n, r] = x Aᵀ
    for (int64_t i = 0; i < n; ++i) {
      const float s = d.scale * coeff[picked[i] * experts + e];
      for (int64_t j = 0; j < d.r; ++j) ax[i * d.r + j] *= s;
    }
    dy.resize(static_cast<size_t>(n * out));
    matmul_abt(ax.data(), d.B.data(), dy.data(), n, out, d.r);
    for (int64_t i = 0; i < n; ++i) {
      float* yr = y + picked[i] * out;
      const float* dr = dy.data() + i * out;
      for (int64_t o = 0; o < out; ++o) yr[o] += dr[o];
    }
  }
}

BoundLora bind_to_layer(Linear& layer, const LoraMap& lora) {
  layer.index = 0;
  BoundLora bound;
  bound.map = std::shared_ptr<const LoraMap>(std::shared_ptr<void>(), &lora);
  bound.by_layer = {checked_deltas(layer, lora)};
  return bound;
}

void merge_lora_into(Linear& layer, const LoraMap& lora) {
  const auto* deltas = find_deltas(layer, &lora);
  if (deltas == nullptr) return;
  // bf16 weights: merged in f32 and rounded once, as PEFT merging into a bf16 model does.
  // Quantized weights: merged in f32; int8 is quantized again, GGUF blocks (for which lorahub has
  // no quantizer) stay f32.
  const bool bf16 = layer.weight_bf16 != nullptr;
  const bool int8 = layer.weight_q != nullptr && layer.weight_q->format == QuantFormat::I8;
  const bool two_levels = int8 && layer.weight_q->residual != nullptr;
  if (bf16 || layer.weight_q != nullptr) layer.weight = weight_f32(layer);
  layer.weight_q = nullptr;
  for (const LoraDelta& d : *deltas) {
    check_delta(layer, d);
    std::vector<float> scaled_b(d.B);
    for (float& v : scaled_b) v *= d.scale;
    matmul_ab(scaled_b.data(), d.A.data(), layer.weight.data(), d.out, d.in, d.r, 1.0f);
  }
  if (bf16) convert_to_bf16(layer);
  if (int8) {
    layer.weight_q = std::make_shared<const QuantMatrix>(
        quantize_rows_int8(layer.weight.data(), layer.out, layer.in, two_levels));
    layer.weight.clear();
  }
}

}  // namespace lorahub

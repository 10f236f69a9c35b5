#include "models/model.h"

#include <unordered_set>

#include "core/error.h"
#include "kernels/ops.h"

namespace lorahub {

namespace {
template <class Map>
void check_targets(const Map& lora, const std::vector<LinearInfo>& layers,
                   const std::string& architecture) {
  std::unordered_set<std::string> known;
  for (const LinearInfo& l : layers) known.insert(l.name);
  const std::string example = layers.empty() ? std::string() : layers.front().name;
  for (const auto& [name, deltas] : lora)
    check(known.count(name) != 0,
          "LoRA target '{}' is not a linear layer of this {} model (expected names like '{}'; "
          "adapter made for another architecture?)",
          name, architecture, example);
}
}  // namespace

std::vector<Tensor> Model::label_logits(const std::vector<Example>&, const SequenceLora&) const {
  fail("{} models do not expose teacher-forced logits", architecture());
}

std::vector<std::vector<float>> Model::mean_hidden_states(const std::vector<std::vector<int32_t>>&,
                                                          const SequenceLora&) const {
  fail("{} models do not expose hidden states", architecture());
}

void Model::decode_steps(const std::vector<DecodeState*>& states,
                         const std::vector<int32_t>& tokens) const {
  size_t next = 0;
  for (DecodeState* state : states) {
    const size_t n = static_cast<size_t>(state->batch);
    check(next + n <= tokens.size(), "decode steps: {} tokens for more sequences", tokens.size());
    decode_step(*state, std::vector<int32_t>(tokens.begin() + next, tokens.begin() + next + n));
    next += n;
  }
  check(next == tokens.size(), "decode steps: {} tokens for {} sequences", tokens.size(), next);
}

std::vector<LinearInfo> Model::linear_layers() const {
  std::vector<LinearInfo> out;
  for (const Linear* l : lora_targets()) out.push_back({l->name, l->in, l->out});
  return out;
}

std::shared_ptr<const BoundLora> Model::bind_lora(std::shared_ptr<const LoraMap> lora) const {
  check(lora != nullptr, "bind_lora: no adapter");
  const std::vector<const Linear*> layers = lora_targets();
  check_lora_targets(*lora, linear_layers(), architecture());
  auto bound = std::make_shared<BoundLora>();
  bound->by_layer.resize(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) bound->by_layer[i] = checked_deltas(*layers[i], *lora);
  bound->map = std::move(lora);
  return bound;
}

std::shared_ptr<const BoundLora> Model::bind_router(
    std::shared_ptr<const LoraRouterMap> routers) const {
  check(routers != nullptr, "bind_router: no adapter");
  const std::vector<const Linear*> layers = lora_targets();
  check_targets(*routers, linear_layers(), architecture());
  auto bound = std::make_shared<BoundLora>();
  bound->routers.resize(layers.size());
  for (size_t i = 0; i < layers.size(); ++i)
    bound->routers[i] = checked_router(*layers[i], *routers);
  bound->router_map = std::move(routers);
  return bound;
}

void index_lora_targets(const std::vector<Linear*>& layers) {
  for (size_t i = 0; i < layers.size(); ++i) layers[i]->index = static_cast<int32_t>(i);
}

ExampleLoss cross_entropy(const float* logits, const std::vector<int32_t>& labels, int64_t vocab) {
  ExampleLoss loss;
  for (size_t t = 0; t < labels.size(); ++t) {
    const float* z = logits + static_cast<int64_t>(t) * vocab;
    loss.ce_sum += log_sum_exp(z, vocab) - z[labels[t]];
    loss.tokens += 1;
  }
  return loss;
}

void truncate_keep_last(std::vector<int32_t>& ids, int64_t max_length) {
  if (max_length < 1 || static_cast<int64_t>(ids.size()) <= max_length) return;
  const int32_t last = ids.back();
  ids.resize(static_cast<size_t>(max_length));
  ids.back() = last;
}

void check_lora_targets(const LoraMap& lora, const std::vector<LinearInfo>& layers,
                        const std::string& architecture) {
  check_targets(lora, layers, architecture);
}

}  // namespace lorahub

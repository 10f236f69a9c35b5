#include "models/model.h"

#include "core/error.h"

namespace lorahub {

std::vector<Tensor> Model::label_logits(const std::vector<Example>&) {
  fail("{} models do not expose teacher-forced logits", architecture());
}

std::vector<std::vector<float>> Model::mean_hidden_states(
    const std::vector<std::vector<int32_t>>&) {
  fail("{} models do not expose hidden states", architecture());
}

}  // namespace lorahub

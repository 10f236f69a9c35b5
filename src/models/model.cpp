#include "models/model.h"

#include "core/error.h"

namespace lorahub {

std::vector<Tensor> Model::label_logits(const std::vector<Example>&) {
  fail("{} models do not expose teacher-forced logits", architecture());
}

}  // namespace lorahub

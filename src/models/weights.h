// Reads named weights out of a state dict for a model builder: checks each tensor's shape against
// what the config implies and converts it to f32 (the reference path). Errors name the file and
// the tensor, so a truncated or mismatched checkpoint is reported precisely.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/state_dict.h"
#include "models/blocks.h"

namespace lorahub {

class WeightReader {
 public:
  // bf16: linear layers are held as bf16 (LoadOptions::bf16); norms and embeddings stay f32.
  explicit WeightReader(const StateDict& weights, bool bf16 = false)
      : weights_(weights), bf16_(bf16) {}

  // The tensor `name`, which must have exactly `shape`, as f32 values.
  std::vector<float> tensor(const std::string& name, const Shape& shape) const;
  std::vector<float> matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return tensor(name, {rows, cols});
  }

  // `<module>.weight` [out, in] (and `<module>.bias` [out] when with_bias) as a Linear named
  // module, in bf16 when the reader was made so.
  Linear linear(const std::string& module, int64_t in, int64_t out, bool with_bias = false) const;
  // `<module>.weight` [dim] as an RMS norm.
  NormLayer norm(const std::string& module, int64_t dim, float eps) const;

 private:
  const StateDict& weights_;
  bool bf16_;
};

}  // namespace lorahub

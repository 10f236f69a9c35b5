#include "models/weights.h"

#include "core/error.h"

namespace lorahub {

std::vector<float> WeightReader::tensor(const std::string& name, const Shape& shape) const {
  const Tensor& t = weights_.get(name);  // throws "<source>: no tensor named '<name>'"
  check(t.shape == shape, "{}: tensor '{}' has shape {}, expected {}", weights_.source(), name,
        shape_str(t.shape), shape_str(shape));
  check(t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16,
        "{}: tensor '{}' has dtype {}, expected F32, F16 or BF16", weights_.source(), name,
        dtype_name(t.dtype));
  std::vector<float> values = t.to_f32();
  t.release_pages();  // the copy is all we keep: peak memory stays near the model's size
  return values;
}

Linear WeightReader::linear(const std::string& module, int64_t in, int64_t out,
                            bool with_bias) const {
  Linear l;
  l.name = module;
  l.in = in;
  l.out = out;
  l.weight = matrix(module + ".weight", out, in);
  if (with_bias) l.bias = tensor(module + ".bias", {out});
  if (bf16_) convert_to_bf16(l);
  return l;
}

NormLayer WeightReader::norm(const std::string& module, int64_t dim, float eps) const {
  return NormLayer{tensor(module + ".weight", {dim}), eps};
}

}  // namespace lorahub

#include "models/weights.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/half.h"

namespace lorahub {

namespace {
// Values converted per step on the bf16 path: the only f32 memory a tensor's load needs.
constexpr int64_t kChunkValues = int64_t{1} << 18;

int64_t row_length(const Shape& shape) {
  return shape.empty() ? 1 : shape.back();
}
}  // namespace

void StateDictSource::read_rows(const std::string& name, int64_t row0, int64_t rows,
                                float* out) const {
  const Tensor& t = weights_.get(name);
  check(t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16,
        "{}: tensor '{}' has dtype {}, expected F32, F16 or BF16", weights_.source(), name,
        dtype_name(t.dtype));
  const int64_t cols = row_length(t.shape);
  const size_t n = static_cast<size_t>(rows * cols);
  const std::byte* from = t.data + static_cast<size_t>(row0 * cols) * dtype_size(t.dtype);
  const auto* u16 = reinterpret_cast<const uint16_t*>(from);
  if (n == 0) return;
  if (t.dtype == DType::F32)
    std::memcpy(out, from, n * sizeof(float));
  else if (t.dtype == DType::F16)
    f16_to_f32(u16, out, n);
  else
    bf16_to_f32(u16, out, n);
}

void WeightReader::check_shape(const std::string& name, const Shape& shape) const {
  const Shape got = weights_.shape(name);  // throws "<source>: no tensor named '<name>'"
  check(got == shape, "{}: tensor '{}' has shape {}, expected {}", weights_.source(), name,
        shape_str(got), shape_str(shape));
}

std::vector<float> WeightReader::tensor(const std::string& name, const Shape& shape) const {
  check_shape(name, shape);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  const int64_t cols = row_length(shape);
  if (cols > 0) weights_.read_rows(name, 0, shape_numel(shape) / cols, values.data());
  weights_.release(name);  // the copy is all we keep: peak memory stays near the model's size
  return values;
}

std::vector<uint16_t> WeightReader::tensor_bf16(const std::string& name, const Shape& shape) const {
  check_shape(name, shape);
  const int64_t cols = row_length(shape);
  const int64_t rows = cols > 0 ? shape_numel(shape) / cols : 0;
  const int64_t step = std::max<int64_t>(1, kChunkValues / std::max<int64_t>(cols, 1));
  std::vector<uint16_t> out(static_cast<size_t>(shape_numel(shape)));
  // One buffer for all tensors: a fresh one per tensor would leave holes between the weights.
  chunk_.resize(std::max(chunk_.size(), static_cast<size_t>(std::min(rows, step) * cols)));
  for (int64_t r = 0; r < rows; r += step) {
    const int64_t n = std::min(step, rows - r);
    weights_.read_rows(name, r, n, chunk_.data());
    f32_to_bf16(chunk_.data(), out.data() + r * cols, static_cast<size_t>(n * cols));
  }
  weights_.release(name);
  return out;
}

Linear WeightReader::linear(const std::string& module, int64_t in, int64_t out, bool with_bias,
                            Quantize quantize) const {
  Linear l;
  l.name = module;
  l.in = in;
  l.out = out;
  if (quantize != Quantize::kFloat &&
      (l.weight_q =
           quantized_weight(module + ".weight", in, out, quantize == Quantize::kTwoLevels)))
    ;
  else if (bf16_)
    l.weight_bf16 =
        std::make_shared<const std::vector<uint16_t>>(tensor_bf16(module + ".weight", {out, in}));
  else
    l.weight = matrix(module + ".weight", out, in);
  if (with_bias) l.bias = tensor(module + ".bias", {out});
  return l;
}

std::shared_ptr<const QuantMatrix> WeightReader::quantized_weight(const std::string& name,
                                                                  int64_t in, int64_t out,
                                                                  bool two_levels) const {
  if (storage_.keep_quantized) {
    check_shape(name, {out, in});
    if (auto blocks = weights_.quantized(name)) {
      weights_.release(name);
      return blocks;
    }
  }
  if (!storage_.int8) return nullptr;
  const std::vector<float> w = matrix(name, out, in);
  return std::make_shared<const QuantMatrix>(quantize_rows_int8(w.data(), out, in, two_levels));
}

Linear WeightReader::tied_linear(const Embedding& embedding, const std::string& name,
                                 std::string module) const {
  std::shared_ptr<const QuantMatrix> q;
  if (storage_.keep_quantized) q = weights_.quantized(name);
  if (!q && storage_.int8) {
    const std::vector<float> w = embedding.values();
    q = std::make_shared<const QuantMatrix>(
        quantize_rows_int8(w.data(), embedding.rows, embedding.dim));
  }
  if (!q) return tied_head(embedding, std::move(module));
  Linear l;
  l.name = std::move(module);
  l.in = embedding.dim;
  l.out = embedding.rows;
  l.weight_q = std::move(q);
  return l;
}

NormLayer WeightReader::norm(const std::string& module, int64_t dim, float eps) const {
  return NormLayer{tensor(module + ".weight", {dim}), eps};
}

Embedding WeightReader::embedding(const std::string& name, int64_t rows, int64_t dim) const {
  Embedding e;
  e.rows = rows;
  e.dim = dim;
  if (bf16_)
    e.bf16 = std::make_shared<const std::vector<uint16_t>>(tensor_bf16(name, {rows, dim}));
  else
    e.f32 = matrix(name, rows, dim);
  return e;
}

Linear tied_head(const Embedding& embedding, std::string name) {
  Linear l;
  l.name = std::move(name);
  l.in = embedding.dim;
  l.out = embedding.rows;
  if (embedding.bf16)
    l.weight_bf16 = embedding.bf16;
  else
    l.weight = embedding.f32;
  return l;
}

}  // namespace lorahub

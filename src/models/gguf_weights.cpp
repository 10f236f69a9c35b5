#include "models/gguf_weights.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "core/error.h"
#include "core/half.h"
#include "kernels/dequant.h"
#include "kernels/quant_matmul.h"

namespace lorahub {

namespace {

std::optional<BlockFormat> block_format(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0:
      return BlockFormat::Q4_0;
    case GgmlType::Q4_1:
      return BlockFormat::Q4_1;
    case GgmlType::Q5_0:
      return BlockFormat::Q5_0;
    case GgmlType::Q5_1:
      return BlockFormat::Q5_1;
    case GgmlType::Q8_0:
      return BlockFormat::Q8_0;
    case GgmlType::Q2_K:
      return BlockFormat::Q2_K;
    case GgmlType::Q3_K:
      return BlockFormat::Q3_K;
    case GgmlType::Q4_K:
      return BlockFormat::Q4_K;
    case GgmlType::Q5_K:
      return BlockFormat::Q5_K;
    case GgmlType::Q6_K:
      return BlockFormat::Q6_K;
    case GgmlType::Q8_K:
      return BlockFormat::Q8_K;
    case GgmlType::IQ2_XXS:
      return BlockFormat::IQ2_XXS;
    case GgmlType::IQ2_XS:
      return BlockFormat::IQ2_XS;
    case GgmlType::IQ2_S:
      return BlockFormat::IQ2_S;
    case GgmlType::IQ3_XXS:
      return BlockFormat::IQ3_XXS;
    case GgmlType::IQ3_S:
      return BlockFormat::IQ3_S;
    case GgmlType::IQ1_S:
      return BlockFormat::IQ1_S;
    case GgmlType::IQ1_M:
      return BlockFormat::IQ1_M;
    case GgmlType::IQ4_NL:
      return BlockFormat::IQ4_NL;
    case GgmlType::IQ4_XS:
      return BlockFormat::IQ4_XS;
    case GgmlType::TQ1_0:
      return BlockFormat::TQ1_0;
    case GgmlType::TQ2_0:
      return BlockFormat::TQ2_0;
    case GgmlType::MXFP4:
      return BlockFormat::MXFP4;
    case GgmlType::NVFP4:
      return BlockFormat::NVFP4;
    default:
      return std::nullopt;
  }
}

bool is_float(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

// Bytes of one row (ne[0] values) of t.
uint64_t row_bytes(const GgufTensorInfo& t) {
  const GgmlTypeInfo& info = ggml_type_info(t.type);
  return static_cast<uint64_t>(t.ne[0] / info.block_size * info.type_size);
}

}  // namespace

void check_dequantizable(const GgufFile& g, const GgufTensorInfo& t) {
  check(is_float(t.type) || block_format(t.type).has_value(),
        "{}: tensor '{}' has ggml type {}, which lorahub cannot convert to floats", g.path(),
        t.name, ggml_type_label(t.type));
}

void gguf_rows_to_f32(const GgufFile& g, const GgufTensorInfo& t, int64_t row0, int64_t rows,
                      float* out) {
  check_dequantizable(g, t);
  const int64_t cols = t.ne[0];
  check(row0 >= 0 && rows >= 0 && row0 + rows <= t.numel() / cols,
        "{}: tensor '{}': rows {}..{} are out of range", g.path(), t.name, row0, row0 + rows);
  const std::byte* src = g.tensor_bytes(t).data() + static_cast<uint64_t>(row0) * row_bytes(t);
  const int64_t n = rows * cols;
  const auto* u16 = reinterpret_cast<const uint16_t*>(src);
  if (t.type == GgmlType::F32)
    std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
  else if (t.type == GgmlType::F16)
    f16_to_f32(u16, out, static_cast<size_t>(n));
  else if (t.type == GgmlType::BF16)
    bf16_to_f32(u16, out, static_cast<size_t>(n));
  else
    dequantize(*block_format(t.type), src, out, n);
}

std::vector<float> gguf_tensor_f32(const GgufFile& g, const GgufTensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  gguf_rows_to_f32(g, t, 0, t.numel() / t.ne[0], out.data());
  return out;
}

std::vector<float> rope_permute_rows(const float* w, int64_t rows, int64_t cols, int64_t heads,
                                     bool to_gguf) {
  check(heads > 0 && rows % heads == 0 && rows / heads % 2 == 0,
        "{} rows do not split into {} heads of even size", rows, heads);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t g = gguf_rope_row(r, rows, heads);
    std::copy_n(w + (to_gguf ? r : g) * cols, cols, out.begin() + (to_gguf ? g : r) * cols);
  }
  return out;
}

GgufWeightSource::GgufWeightSource(const GgufFile& gguf, std::map<std::string, Entry> tensors)
    : gguf_(gguf), tensors_(std::move(tensors)) {
  for (const auto& [name, e] : tensors_) {
    check_dequantizable(gguf_, *e.tensor);
    const int64_t rows = e.tensor->numel() / e.tensor->ne[0];
    check(e.rope_heads == 0 || (rows % e.rope_heads == 0 && rows / e.rope_heads % 2 == 0),
          "{}: tensor '{}' has {} rows, which do not split into {} heads of even size",
          gguf_.path(), e.tensor->name, rows, e.rope_heads);
  }
}

const GgufWeightSource::Entry& GgufWeightSource::entry(const std::string& name) const {
  const auto it = tensors_.find(name);
  check(it != tensors_.end(), "{}: no tensor named '{}'", gguf_.path(), name);
  return it->second;
}

void GgufWeightSource::read_rows(const std::string& name, int64_t row0, int64_t rows,
                                 float* out) const {
  const Entry& e = entry(name);
  const GgufTensorInfo& t = *e.tensor;
  if (e.rope_heads == 0) {
    gguf_rows_to_f32(gguf_, t, row0, rows, out);
  } else {
    const int64_t all_rows = t.numel() / t.ne[0];
    for (int64_t r = row0; r < row0 + rows; ++r)
      gguf_rows_to_f32(gguf_, t, gguf_rope_row(r, all_rows, e.rope_heads), 1,
                       out + (r - row0) * t.ne[0]);
  }
  if (e.shift != 0.0f)
    for (int64_t k = 0; k < rows * t.ne[0]; ++k) out[k] += e.shift;
}

std::shared_ptr<const QuantMatrix> GgufWeightSource::quantized(const std::string& name) const {
  const Entry& e = entry(name);
  const GgufTensorInfo& t = *e.tensor;
  const auto block = block_format(t.type);
  const auto format = block ? quant_format_for(*block) : std::nullopt;
  if (!format || e.shift != 0.0f || t.shape().size() != 2) return nullptr;
  auto m = std::make_shared<QuantMatrix>();
  m->format = *format;
  m->cols = t.ne[0];
  m->rows = t.numel() / t.ne[0];
  const uint64_t bytes = row_bytes(t);
  const std::byte* src = gguf_.tensor_bytes(t).data();
  m->data.resize(static_cast<size_t>(m->rows) * bytes);
  const int64_t d = e.rope_heads == 0 ? 0 : m->rows / e.rope_heads, half = d / 2;
  for (int64_t r = 0; r < m->rows; ++r) {
    // As read_rows: transformers row h·d + j·d/2 + i is GGUF row h·d + 2i + j.
    const int64_t from = d == 0 ? r : r / d * d + 2 * (r % half) + r % d / half;
    std::memcpy(m->data.data() + r * bytes, src + from * bytes, bytes);
  }
  return m;
}

void GgufWeightSource::release(const std::string& name) const {
  gguf_.file()->release_pages(gguf_.tensor_bytes(*entry(name).tensor));
}

}  // namespace lorahub

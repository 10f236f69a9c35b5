// GGUF tensors for model builders: every ggml type gguf-py can dequantize (kernels/dequant.h),
// read row by row straight from the mmapped file, under the names a model asks for.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "models/weights.h"

namespace lorahub {

// Throws Error naming the file, tensor and type ("Q1_0 (41)") unless lorahub can turn the
// tensor's type into f32.
void check_dequantizable(const GgufFile& gguf, const GgufTensorInfo& t);
// Rows [row0, row0 + rows) of t (a row is ne[0] values) as f32, exactly as gguf.quants.dequantize.
void gguf_rows_to_f32(const GgufFile& gguf, const GgufTensorInfo& t, int64_t row0, int64_t rows,
                      float* out);
std::vector<float> gguf_tensor_f32(const GgufFile& gguf, const GgufTensorInfo& t);

// llama.cpp's converter permutes the rows of Llama's q/k projections for its RoPE layout: within
// each of `heads` heads of d rows, transformers row j·d/2 + i is GGUF row 2i + j. The GGUF row of
// transformers row `row` of a [rows, ...] tensor.
inline int64_t gguf_rope_row(int64_t row, int64_t rows, int64_t heads) {
  const int64_t d = rows / heads, half = d / 2;
  const int64_t h = row / d, j = row % d / half, i = row % half;
  return h * d + 2 * i + j;
}
// A whole [rows, cols] q/k tensor into llama.cpp's row order (to_gguf) or back into transformers'.
std::vector<float> rope_permute_rows(const float* w, int64_t rows, int64_t cols, int64_t heads,
                                     bool to_gguf);

// A GGUF file's tensors under model-side names. rope_heads > 0 marks a q/k projection that
// llama.cpp's converter permuted for its RoPE layout (convert_hf_to_gguf's permute: within each
// head, rows [first halves | second halves] became interleaved pairs); its rows are read back in
// transformers' order. shift undoes a converter's constant offset.
class GgufWeightSource : public WeightSource {
 public:
  struct Entry {
    const GgufTensorInfo* tensor = nullptr;
    int64_t rope_heads = 0;
    float shift = 0.0f;  // added to every value read (Gemma's norms, stored as 1 + w: -1)
  };
  // Checks every entry's type up front, so a file is refused before anything is converted.
  GgufWeightSource(const GgufFile& gguf, std::map<std::string, Entry> tensors);

  const std::string& source() const override { return gguf_.path(); }
  bool contains(const std::string& name) const override { return tensors_.count(name) != 0; }
  Shape shape(const std::string& name) const override { return entry(name).tensor->shape(); }
  void read_rows(const std::string& name, int64_t row0, int64_t rows, float* out) const override;
  void release(const std::string& name) const override;
  // The tensor's rows as stored (rows in transformers' order), where its type has a kernel.
  std::shared_ptr<const QuantMatrix> quantized(const std::string& name) const override;
  const std::map<std::string, Entry>& entries() const { return tensors_; }

 private:
  const Entry& entry(const std::string& name) const;
  const GgufFile& gguf_;
  std::map<std::string, Entry> tensors_;
};

}  // namespace lorahub

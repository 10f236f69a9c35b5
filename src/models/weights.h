// Reads named weights for a model builder, one tensor at a time: checks each tensor's shape
// against what the config implies and converts it straight from its storage (an mmapped
// safetensors or GGUF file, dequantized on the fly) to what the model holds: f32 on the reference
// path, bf16 on the fast path (LoadOptions::bf16), in row chunks, so that loading never holds a
// model-wide (or even a whole-tensor) f32 copy. The file pages of each tensor are released once it
// is converted. Errors name the file and the tensor.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/state_dict.h"
#include "models/blocks.h"

namespace lorahub {

// Where a model's weights come from: tensors by (HF) name, readable as f32 rows on demand. A row
// is the last dimension ([out, in] has `out` rows of `in` values; a vector is one row).
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual const std::string& source() const = 0;  // file or directory, for messages
  virtual bool contains(const std::string& name) const = 0;
  // Shape as PyTorch sees it; throws "<source>: no tensor named '<name>'".
  virtual Shape shape(const std::string& name) const = 0;
  // Rows [row0, row0 + rows) as f32 into out (rows × shape.back() values).
  virtual void read_rows(const std::string& name, int64_t row0, int64_t rows, float* out) const = 0;
  // The tensor has been converted: its file pages may leave memory (read again if touched).
  virtual void release(const std::string& name) const = 0;
};

// A state dict's F32/F16/BF16 tensors (HF directories, T5).
class StateDictSource : public WeightSource {
 public:
  explicit StateDictSource(const StateDict& weights) : weights_(weights) {}
  const std::string& source() const override { return weights_.source(); }
  bool contains(const std::string& name) const override { return weights_.contains(name); }
  Shape shape(const std::string& name) const override { return weights_.get(name).shape; }
  void read_rows(const std::string& name, int64_t row0, int64_t rows, float* out) const override;
  void release(const std::string& name) const override { weights_.get(name).release_pages(); }

 private:
  const StateDict& weights_;
};

class WeightReader {
 public:
  // bf16: linear layers and embeddings are held as bf16 (LoadOptions::bf16); norms stay f32.
  explicit WeightReader(const WeightSource& weights, bool bf16 = false)
      : weights_(weights), bf16_(bf16) {}
  explicit WeightReader(const StateDict& weights, bool bf16 = false)
      : owned_(std::make_unique<StateDictSource>(weights)), weights_(*owned_), bf16_(bf16) {}

  bool contains(const std::string& name) const { return weights_.contains(name); }

  // The tensor `name`, which must have exactly `shape`, as f32 values.
  std::vector<float> tensor(const std::string& name, const Shape& shape) const;
  std::vector<float> matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return tensor(name, {rows, cols});
  }
  // The same, rounded to bf16 (round to nearest even, as torch's .to(bfloat16)) chunk by chunk.
  std::vector<uint16_t> tensor_bf16(const std::string& name, const Shape& shape) const;

  // `<module>.weight` [out, in] (and `<module>.bias` [out] when with_bias) as a Linear named
  // module, in bf16 when the reader was made so.
  Linear linear(const std::string& module, int64_t in, int64_t out, bool with_bias = false) const;
  // `<module>.weight` [dim] as an RMS norm.
  NormLayer norm(const std::string& module, int64_t dim, float eps) const;
  // A token embedding table [rows, dim], in bf16 when the reader was made so.
  Embedding embedding(const std::string& name, int64_t rows, int64_t dim) const;

 private:
  void check_shape(const std::string& name, const Shape& shape) const;

  std::unique_ptr<const WeightSource> owned_;
  const WeightSource& weights_;
  bool bf16_;
  mutable std::vector<float> chunk_;  // tensor_bf16's conversion buffer
};

// An LM head tied to the embedding (the same values, [vocab, dim] as [out, in]): on the bf16 path
// it shares the embedding's storage, so tied weights are in memory once.
Linear tied_head(const Embedding& embedding, std::string name);

}  // namespace lorahub

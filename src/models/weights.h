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
  // The tensor's quantized blocks as they are stored, where the source has them and the
  // quantized products have a kernel for their type; nullptr otherwise.
  virtual std::shared_ptr<const QuantMatrix> quantized(const std::string& /*name*/) const {
    return nullptr;
  }
};

// How a WeightReader holds linear layers and embeddings (from LoadOptions).
struct WeightStorage {
  bool bf16 = false;  // bf16 linear layers and embeddings (norms stay f32)
  bool int8 = false;  // linear layers as int8 per output channel (quantized at load)
  // linear layers as the source's quantized blocks where it has them (GGUF); the others (and the
  // embeddings) as bf16 or f32 above
  bool keep_quantized = false;
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
  explicit WeightReader(const WeightSource& weights, WeightStorage storage = {})
      : weights_(weights), storage_(storage), bf16_(storage.bf16) {}
  explicit WeightReader(const StateDict& weights, WeightStorage storage = {})
      : owned_(std::make_unique<StateDictSource>(weights)),
        weights_(*owned_),
        storage_(storage),
        bf16_(storage.bf16) {}

  bool contains(const std::string& name) const { return weights_.contains(name); }

  // The tensor `name`, which must have exactly `shape`, as f32 values.
  std::vector<float> tensor(const std::string& name, const Shape& shape) const;
  std::vector<float> matrix(const std::string& name, int64_t rows, int64_t cols) const {
    return tensor(name, {rows, cols});
  }
  // The same, rounded to bf16 (round to nearest even, as torch's .to(bfloat16)) chunk by chunk.
  std::vector<uint16_t> tensor_bf16(const std::string& name, const Shape& shape) const;

  // `<module>.weight` [out, in] (and `<module>.bias` [out] when with_bias) as a Linear named
  // module, held as the reader's WeightStorage says; kFloat keeps it out of the quantized
  // storages (bf16 or f32: a layer a model knows int8 weights to fail on); kTwoLevels: as the
  // storage, but int8 weights (--int8) in two levels (QuantMatrix::residual, about 15 bits: a
  // layer whose weight rounding the model amplifies; 1.5x its integer products).
  enum class Quantize { kAsStorage, kFloat, kTwoLevels };
  Linear linear(const std::string& module, int64_t in, int64_t out, bool with_bias = false,
                Quantize quantize = Quantize::kAsStorage) const;
  // An LM head tied to `embedding` (read from tensor `name`): on the quantized paths its own
  // int8 copy or the file's blocks of the table, else tied_head().
  Linear tied_linear(const Embedding& embedding, const std::string& name, std::string module) const;
  // `<module>.weight` [dim] as an RMS norm.
  NormLayer norm(const std::string& module, int64_t dim, float eps) const;
  // A token embedding table [rows, dim], in bf16 when the reader was made so.
  Embedding embedding(const std::string& name, int64_t rows, int64_t dim) const;

 private:
  void check_shape(const std::string& name, const Shape& shape) const;

  std::unique_ptr<const WeightSource> owned_;
  // W as int8 or as the source's blocks where the storage asks for it; nullptr otherwise.
  std::shared_ptr<const QuantMatrix> quantized_weight(const std::string& name, int64_t in,
                                                      int64_t out, bool two_levels = false) const;

  const WeightSource& weights_;
  WeightStorage storage_;
  bool bf16_;
  mutable std::vector<float> chunk_;  // tensor_bf16's conversion buffer
};

// An LM head tied to the embedding (the same values, [vocab, dim] as [out, in]): on the bf16 path
// it shares the embedding's storage, so tied weights are in memory once.
Linear tied_head(const Embedding& embedding, std::string name);

}  // namespace lorahub

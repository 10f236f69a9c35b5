// The interface every model (T5 encoder-decoder, Llama-family decoder) offers to the layers
// above: teacher-forced scoring, greedy generation, and LoRA through one side path.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/lora_delta.h"
#include "tokenizer/tokenizer.h"

namespace lorahub {

// One tokenized example. Encoder-decoder: input_ids feed the encoder, label_ids are the decoder
// targets (T5: ids(output) + EOS). Decoder-only: the sequence is input_ids + label_ids and the
// loss covers only the label_ids positions (DESIGN / issue 6 convention).
struct Example {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> label_ids;
};

// Cross-entropy of one example: summed over its label tokens, and how many there were.
// transformers' batch loss = Σ ce_sum / Σ tokens over the batch.
struct ExampleLoss {
  double ce_sum = 0.0;
  int64_t tokens = 0;
};

struct LinearInfo {  // a linear layer that LoRA can target
  std::string name;  // HF module path, e.g. "decoder.block.0.layer.1.EncDecAttention.q"
  int64_t in = 0, out = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual std::string architecture() const = 0;  // "t5", "llama", "qwen2", ...
  virtual bool is_encoder_decoder() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;

  // How the model family turns text into an Example (T5: EOS appended to both sides;
  // decoder-only: ids(input) + ids(" " + output) + EOS).
  virtual Example make_example(const std::string& input, const std::string& output) const = 0;

  // Teacher-forced losses for a batch, padded internally to the longest with masks.
  virtual std::vector<ExampleLoss> score(const std::vector<Example>& batch) = 0;

  // Teacher-forced logits at each example's label positions, one [label tokens, vocab] f32
  // tensor per example (parity tests and debugging). Families without it throw Error.
  virtual std::vector<Tensor> label_logits(const std::vector<Example>& batch);

  // The mean over each input's tokens of the base model's last hidden state (after the final
  // norm; the encoder's for encoder-decoder models), one [hidden] vector per input: the input
  // embedding of LoraRetriever-style module retrieval. LoRA, if set, applies. Families without
  // it throw Error.
  virtual std::vector<std::vector<float>> mean_hidden_states(
      const std::vector<std::vector<int32_t>>& inputs);

  // Greedy decoding with a KV cache; returns only the generated ids (no prompt, stops at EOS).
  virtual std::vector<std::vector<int32_t>> generate(
      const std::vector<std::vector<int32_t>>& inputs, int max_new_tokens) = 0;

  // LoRA as an unmerged side path (nullptr = none). The map must outlive its use.
  virtual void set_lora(const LoraMap* lora) = 0;
  // Adds the LoRA deltas into the base weights (W += scale·B·A), as merge_and_unload does.
  virtual void merge_lora(const LoraMap& lora) = 0;
  // Linear layers LoRA may target, with their shapes.
  virtual std::vector<LinearInfo> linear_layers() const = 0;
  // The current weights as an HF state dict (f32), names as transformers saves them.
  virtual std::vector<std::pair<std::string, Tensor>> state_dict() const = 0;
};

struct LoadOptions {
  bool bf16 = false;  // compute with bf16 weights (fast path) instead of f32 (reference path)
  int threads = 0;    // 0 = all cores
};

// Loads from an HF model directory (config.json + weights + tokenizer) or a .gguf file.
// Throws Error naming the file, tensor or field at fault.
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace lorahub

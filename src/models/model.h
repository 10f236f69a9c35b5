// The interface every model (T5 encoder-decoder, Llama-family decoder) offers to the layers
// above: teacher-forced scoring, the two steps of decoding (prefill, decode step; the loop
// itself, with sampling and stop strings, is models/decode.h), and LoRA through one side path.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "models/linear.h"
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

// Inputs longer than this are cut, as the reference tokenizes with max_length=2048.
constexpr size_t kMaxInputTokens = 2048;

// Cross-entropy of the labels under `logits` [labels.size(), vocab] (row t predicts labels[t]).
ExampleLoss cross_entropy(const float* logits, const std::vector<int32_t>& labels, int64_t vocab);

// Cuts ids to max_length (< 1 = no limit) keeping the last id (EOS stays the last token).
void truncate_keep_last(std::vector<int32_t>& ids, int64_t max_length);

// What one batch being decoded needs between steps (KV caches, masks, positions). Made by
// Model::prefill, owned by the caller; `logits` [batch, vocab_size()] predict each sequence's
// next token after the latest step.
class DecodeState {
 public:
  virtual ~DecodeState() = default;
  // An independent copy (KV caches included) that decodes on from the same point: several
  // continuations of one prefilled prompt (eval/option_scoring.h).
  virtual std::unique_ptr<DecodeState> clone() const = 0;
  int64_t batch = 0;
  std::vector<float> logits;
  SequenceLora lora;  // the adapters the batch runs with (from prefill; not owned)
};

struct LinearInfo {  // a linear layer that LoRA can target
  std::string name;  // HF module path, e.g. "decoder.block.0.layer.1.EncDecAttention.q"
  int64_t in = 0, out = 0;
};

// A loaded model is immutable: every method is const and safe to call from many threads at
// once. Per-call state (KV caches, scratch) lives in the call or in its DecodeState, and each call
// says which adapter each of its sequences runs with (SequenceLora of adapters bound by
// bind_lora; models/lora_delta.h). Only merge_lora changes weights, before the model is shared.
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
  virtual std::vector<ExampleLoss> score(const std::vector<Example>& batch,
                                         const SequenceLora& lora = {}) const = 0;

  // Teacher-forced logits at each example's label positions, one [label tokens, vocab] f32
  // tensor per example (parity tests and debugging). Families without it throw Error.
  virtual std::vector<Tensor> label_logits(const std::vector<Example>& batch,
                                           const SequenceLora& lora = {}) const;

  // The mean over each input's tokens of the last hidden state (after the final norm; the
  // encoder's for encoder-decoder models), one [hidden] vector per input: the input embedding of
  // LoraRetriever-style module retrieval. Families without it throw Error.
  virtual std::vector<std::vector<float>> mean_hidden_states(
      const std::vector<std::vector<int32_t>>& inputs, const SequenceLora& lora = {}) const;

  // Decoding, driven by decode() (models/decode.h). prefill runs the prompts (T5: the encoder
  // and the decoder's start token; decoder-only: the whole prompt, left-padded) with room for
  // max_new_tokens more tokens per sequence; decode_step feeds one token per sequence, a negative
  // one for a finished sequence (decode() and ContinuousBatcher send -1): the decoder family
  // leaves that row out of the step (no activations, no key/value written, its logits row left
  // as it was), T5 computes it on a filler token (pad) and ignores it. Prompts over
  // kMaxInputTokens are cut.
  virtual std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>& prompts,
                                               int max_new_tokens,
                                               const SequenceLora& lora = {}) const = 0;
  virtual void decode_step(DecodeState& state, const std::vector<int32_t>& tokens) const = 0;
  // One step of several batches at once, each from its own prefill (continuous batching:
  // sequences join and leave between steps); `tokens` holds each state's tokens in turn. The
  // decoder family computes every linear layer once over all rows; the default steps each state.
  virtual void decode_steps(const std::vector<DecodeState*>& states,
                            const std::vector<int32_t>& tokens) const;
  // Rows of the logits (may exceed the tokenizer's vocabulary: FLAN-T5 32128 vs 32100).
  virtual int64_t vocab_size() const = 0;
  // Tokens that end a sequence (config's eos_token_id); not part of the generated text.
  virtual std::vector<int32_t> end_of_sequence_ids() const = 0;

  // Checks `lora` against this model (every target one of its linear layers, every shape that
  // layer's) and indexes it for calls. Throws Error naming the first target at fault.
  std::shared_ptr<const BoundLora> bind_lora(std::shared_ptr<const LoraMap> lora) const;
  // The same for a map the caller keeps alive for as long as the binding is used.
  std::shared_ptr<const BoundLora> bind_lora(const LoraMap& lora) const {
    return bind_lora(std::shared_ptr<const LoraMap>(std::shared_ptr<void>(), &lora));
  }
  // The same for a routed adapter (Arrow, lora/arrow.h): per-token mixtures that only the side
  // path can run. Throws Error naming the first target or router at fault.
  std::shared_ptr<const BoundLora> bind_router(std::shared_ptr<const LoraRouterMap> routers) const;
  // Adds the LoRA deltas into the base weights (W += scale·B·A), as merge_and_unload does. The
  // one method that changes a model: use it right after loading, before the model is shared.
  virtual void merge_lora(const LoraMap& lora) = 0;
  // Linear layers LoRA may target, with their shapes, in the order of Linear::index.
  std::vector<LinearInfo> linear_layers() const;
  // The current weights as an HF state dict (f32), names as transformers saves them.
  virtual std::vector<std::pair<std::string, Tensor>> state_dict() const = 0;

 protected:
  // The LoRA targets, position i holding the layer with Linear::index == i.
  virtual std::vector<const Linear*> lora_targets() const = 0;
};

// Numbers the layers (Linear::index = position) in the order lora_targets() returns them.
void index_lora_targets(const std::vector<Linear*>& layers);

// Throws Error naming the first target of `lora` that is not one of `layers` (an adapter made for
// another architecture, e.g. T5 keys on a Llama, would otherwise silently do nothing).
void check_lora_targets(const LoraMap& lora, const std::vector<LinearInfo>& layers,
                        const std::string& architecture);

struct LoadOptions {
  bool bf16 = false;  // compute with bf16 weights (fast path) instead of f32 (reference path)
  // > 0: also sets the process's compute threads, for callers not yet on api::init_runtime
  // (which owns that setting); 0 leaves the thread count as it is.
  int threads = 0;
  // Linear layers as int8 per output channel, quantized at load (any model; T5's wo in two int8
  // levels, QuantMatrix::residual); activations are quantized on the fly: to int8 per 32 values
  // for up to kIntegerRowsMax rows (decoding steps, the integer kernels), per row in two int8
  // levels (about 15 bits, oneDNN's int8 matmul) for more (kernels/quant_matmul.h,
  // int8_matmul.cpp).
  bool int8 = false;
  // GGUF files: linear layers keep the file's quantized blocks (Q4_0 ... Q6_K) and are multiplied
  // in them; types without a kernel load as int8 (with int8), bf16 (with bf16) or f32.
  bool quantized = false;
};

// Loads from an HF model directory (config.json + weights + tokenizer) or a .gguf file.
// Throws Error naming the file, tensor or field at fault.
std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});

}  // namespace lorahub

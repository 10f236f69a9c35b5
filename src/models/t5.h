// T5 v1.0, v1.1 and FLAN-T5 (transformers' T5ForConditionalGeneration) as a configuration of the
// shared blocks: pre-norm RMS layers, unscaled attention with a relative position bias computed
// by the first layer of each stack, relu or gated-gelu feed-forward, optional tied LM head with
// the decoder output scaled by d_model^-0.5.
#pragma once
#include <memory>
#include <string>

#include "formats/hf_config.h"
#include "formats/state_dict.h"
#include "kernels/ops.h"
#include "models/model.h"

namespace lorahub {

struct T5Config {
  int64_t vocab_size = 0, d_model = 0, d_kv = 0, d_ff = 0, num_heads = 0;
  int64_t num_layers = 0, num_decoder_layers = 0;
  int64_t num_buckets = 32, max_distance = 128;
  float eps = 1e-6f;
  bool gated = false;  // feed_forward_proj "gated-<act>"
  Activation act = Activation::Relu;
  // Original T5 (tied embeddings) scales the decoder output by d_model^-0.5 before the LM head.
  bool scale_decoder_outputs = true;
  int32_t decoder_start_id = 0, eos_id = 1, pad_id = 0;

  // Reads config.json the way transformers' T5Config does; required fields throw naming the file.
  static T5Config from_hf(const HfConfig& config);
};

// `dir`: an HF model directory (config.json, weights, spiece.model).
std::unique_ptr<Model> load_t5(const std::string& dir, const HfConfig& config,
                               const LoadOptions& options);

}  // namespace lorahub

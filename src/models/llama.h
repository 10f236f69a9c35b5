// The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2) as a configuration of the shared blocks:
// pre-norm RMSNorm, rotary attention with grouped-query heads (optional q/k/v bias for Qwen2),
// SwiGLU feed-forward, optional tied LM head. Loaded from an HF directory (config.json +
// safetensors + tokenizer.json) or from a GGUF file (llama.cpp names, dequantized tensor by
// tensor, the converter's Q/K row permutation undone).
//
// Decoder-only convention (issue 6): an example is ids(input) with the tokenizer's default special
// tokens + ids(" " + output) without them + EOS; the loss covers only the output and EOS tokens.
// Generation continues from ids(input), greedy, batched with left padding.
#pragma once
#include <memory>
#include <string>

#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "formats/state_dict.h"
#include "kernels/rope.h"
#include "models/gguf_weights.h"
#include "models/model.h"

namespace lorahub {

struct LlamaConfig {
  std::string architecture = "llama";  // "llama", "mistral", "qwen2"
  int64_t vocab_size = 0, hidden = 0, intermediate = 0, layers = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  float eps = 1e-6f;
  bool qkv_bias = false;  // Qwen2, or Llama's attention_bias
  bool tied_embeddings = false;
  std::vector<int32_t> eos_ids;  // generation stops at any of these (config's eos_token_id)

  static LlamaConfig from_hf(const HfConfig& config);
  static LlamaConfig from_gguf(const GgufFile& gguf);
  void validate(const std::string& source) const;
};

// config.json model_type values this family loads.
bool is_llama_family(const std::string& model_type);

std::unique_ptr<Model> load_llama(const std::string& dir, const HfConfig& config,
                                  const LoadOptions& options);
std::unique_ptr<Model> load_llama_gguf(const std::string& path, const LoadOptions& options);

// The GGUF tensors under their HF names, read (dequantized) on demand, Q/K rows un-permuted for
// "llama".
GgufWeightSource gguf_weights(const GgufFile& gguf, const LlamaConfig& config);

}  // namespace lorahub

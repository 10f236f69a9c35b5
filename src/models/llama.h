// The decoder-only models (Llama 2/3, SmolLM2, Mistral, Qwen2, Qwen3, Phi-3, Gemma 3 text) as one
// decoder over the shared blocks, configured by a DecoderSpec (models/decoder_spec.h): RMSNorm
// before (and for Gemma also after) each sub-layer, rotary attention with grouped-query heads,
// optional q/k norms, biases, sliding windows and soft-capping, a gated feed-forward, optional
// tied LM head. Loaded from an HF directory (config.json + safetensors + tokenizer.json) or from a
// GGUF file (llama.cpp names, dequantized tensor by tensor, the converter's changes undone).
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
#include "models/decoder_spec.h"
#include "models/gguf_weights.h"
#include "models/model.h"

namespace lorahub {

std::unique_ptr<Model> load_llama(const std::string& dir, const HfConfig& config,
                                  const LoadOptions& options);
std::unique_ptr<Model> load_llama_gguf(const std::string& path, const LoadOptions& options);

// The GGUF tensors under their HF names, read (dequantized) on demand, with llama.cpp's
// conversions undone (Q/K rows un-permuted for "llama", Gemma's norms stored as 1 + w back to w).
GgufWeightSource gguf_weights(const GgufFile& gguf, const DecoderSpec& spec);

}  // namespace lorahub

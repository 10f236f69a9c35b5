// Generation over many inputs: texts in, decoded outputs out, in batches (the reference decodes
// 10 at a time), through the one decoding loop (models/decode.h).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/decode.h"

namespace lorahub {

struct GenerateOptions {
  DecodeOptions decode;  // on_event's `sequence` indexes all inputs, not one batch
  int batch_size = 10;
  std::function<void(size_t done, size_t total)> on_progress;  // after each batch
  const BoundLora* lora = nullptr;  // the adapter of every input (Model::bind_lora); none = base
};

// Tokenizes each input with the tokenizer's default special tokens and decodes it.
std::vector<Decoded> generate_texts(const Model& model, const std::vector<std::string>& inputs,
                                    const GenerateOptions& options);

}  // namespace lorahub

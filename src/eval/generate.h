// Generation over many inputs: texts in, decoded outputs out, `batch_size` sequences at a time
// (the reference decodes 10 at a time) with refill: a sequence that ends is replaced by the next
// input at the next step (models/batcher.h), instead of waiting for the last of its batch.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "models/decode.h"

namespace lorahub {

struct GenerateOptions {
  DecodeOptions decode;  // on_event's `sequence` indexes all inputs, not one batch
  int batch_size = 10;
  std::function<void(size_t done, size_t total)> on_progress;  // when sequences have ended
  const BoundLora* lora = nullptr;   // the adapter of every input (Model::bind_lora); none = base
  DecodeTimings* timings = nullptr;  // if set, receives the call's timings
};

// Tokenizes each input with the tokenizer's default special tokens and decodes it.
std::vector<Decoded> generate_texts(const Model& model, const std::vector<std::string>& inputs,
                                    const GenerateOptions& options);

}  // namespace lorahub

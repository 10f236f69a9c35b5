// The work behind `lorahub score` and `lorahub generate`, on an already loaded Model, so that
// other subcommands (e.g. with LoRA modules applied via Model::set_lora / merge_lora) reuse it.
#pragma once
#include <string>
#include <vector>

#include "models/model.h"

namespace lorahub::cli {

struct ScoreReport {
  std::vector<ExampleLoss> examples;
  double batch_loss = 0.0;  // transformers' loss over all examples as one batch: Σ CE / Σ tokens
};

// Scores tokenized examples in batches of batch_size (0 = one batch).
ScoreReport score_examples(Model& model, const std::vector<Example>& examples, int batch_size);

struct Generations {
  std::vector<std::vector<int32_t>> ids;  // generated ids (no EOS)
  std::vector<std::string> texts;         // decoded, special tokens skipped
};

// Greedy generation in batches of batch_size (the reference uses 10).
Generations generate_texts(Model& model, const std::vector<std::string>& inputs, int max_new_tokens,
                           int batch_size);

}  // namespace lorahub::cli

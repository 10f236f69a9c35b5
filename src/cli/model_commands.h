// The work behind `lorahub score` and `lorahub generate`, on an already loaded Model, so that
// other subcommands (e.g. with LoRA modules applied via Model::set_lora / merge_lora) reuse it.
#pragma once
#include <string>
#include <vector>

#include "eval/generate.h"
#include "models/model.h"

namespace lorahub::cli {

struct ScoreReport {
  std::vector<ExampleLoss> examples;
  double batch_loss = 0.0;  // transformers' loss over all examples as one batch: Σ CE / Σ tokens
};

// Scores tokenized examples in batches of batch_size (0 = one batch).
ScoreReport score_examples(Model& model, const std::vector<Example>& examples, int batch_size);

// Generation through eval/generate.h with the CLI's progress bar.
std::vector<Decoded> generate_with_progress(Model& model, const std::vector<std::string>& inputs,
                                            GenerateOptions options);

}  // namespace lorahub::cli

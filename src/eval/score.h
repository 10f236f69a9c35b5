// Teacher-forced scoring of (input, output) examples in batches, as transformers computes `loss`
// (label padding ignored; the mean over all label tokens of a batch): the work behind
// `lorahub score`, for any loaded Model.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "eval/jsonl.h"
#include "models/model.h"

namespace lorahub {

struct ScoreReport {
  std::vector<ExampleLoss> examples;
  double batch_loss = 0.0;  // transformers' loss over all examples as one batch: Σ CE / Σ tokens
};

// Tokenizes rows that all have an output; throws naming "<source>:<line>" for one without.
std::vector<Example> tokenize_examples(const Model& model, const std::vector<TextExample>& rows,
                                       const std::string& source);

// Calls f(first, batch) for consecutive batches of at most batch_size (0 = one batch).
void for_each_batch(const std::vector<Example>& examples, int batch_size,
                    const std::function<void(size_t first, const std::vector<Example>&)>& f);

// Scores the examples in batches of batch_size (0 = one batch), each with `lora`.
ScoreReport score_examples(const Model& model, const std::vector<Example>& examples, int batch_size,
                           const SequenceLora& lora = {});

// The token-mean cross-entropy of one example (0 for no tokens).
double token_mean(const ExampleLoss& loss);

}  // namespace lorahub

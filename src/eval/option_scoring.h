// Option-likelihood scoring (rank classification), as lm-evaluation-harness scores a
// multiple-choice task: for each question, the log-likelihood log P(option | prompt) of every
// answer option under teacher forcing, and the answer is the option with the highest. It shows
// what a model (or an adapter) prefers even when its generated answer has the wrong format.
//
// The scored continuation is what the model family's Model::make_example puts after the prompt
// (decoder-only: ids(" " + option) + EOS; T5: ids(option) + EOS): the tokenization of the
// LoraHub objective and of the library's training. lm-eval scores the option without EOS; with
// it, an option that is a prefix of another ("1" and "12") is not preferred for being shorter,
// and the score is that of the complete answer.
//
// Two rankings, as lm-eval reports them: `acc` by the raw log-likelihood, `acc_norm` by the
// log-likelihood divided by the option's length in characters (lm-eval's acc_norm). Ties go to
// the first option (numpy's argmax).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "models/model.h"

namespace lorahub {

struct OptionScoreOptions {
  // One prefill per `batch_size` questions, every option decoded on from a copy of their KV
  // caches (the options' steps batched): each prompt runs once instead of once per option, in
  // batches. False: every (question, option) pair is its own teacher-forced sequence
  // (Model::score), `batch_size` per forward.
  bool shared_prefix = true;
  int batch_size = 10;  // questions per prefill (shared prefix), or pairs per forward (per pair)
  SequenceLora lora;    // the adapter of every sequence (Model::bind_lora); none = base
  // (question, option) pairs scored so far, after each batch (or question)
  std::function<void(size_t done, size_t total)> on_progress;
};

// log P(option | prompt) per prompt and option: [prompts.size()][options.size()]. Throws Error
// when there are no options.
std::vector<std::vector<double>> option_log_likelihoods(const Model& model,
                                                        const std::vector<std::string>& prompts,
                                                        const std::vector<std::string>& options,
                                                        const OptionScoreOptions& settings = {});

// The index of the best option: by log-likelihood, or (length_normalized) by log-likelihood per
// character of the option (UTF-8 code points). Throws Error when the sizes differ or are zero.
size_t best_option(const std::vector<double>& log_likelihoods,
                   const std::vector<std::string>& options, bool length_normalized);

}  // namespace lorahub

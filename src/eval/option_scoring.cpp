#include "eval/option_scoring.h"

#include <algorithm>

#include "core/error.h"
#include "eval/score.h"

namespace lorahub {

namespace {

// log P(option | prompt) of every option of one question: the prompt prefilled once, each option
// teacher-forced on a copy of its state, all options' steps in one batched decode_steps.
std::vector<double> shared_prefix_scores(const Model& model, const std::string& prompt,
                                         const std::vector<std::string>& options,
                                         const SequenceLora& lora) {
  std::vector<Example> examples;
  size_t longest = 0;
  for (const std::string& option : options) {
    examples.push_back(model.make_example(prompt, option));
    check(!examples.back().label_ids.empty(), "option '{}' has no tokens", option);
    longest = std::max(longest, examples.back().label_ids.size());
  }
  // make_example tokenizes the prompt apart from the option: the same ids for every option.
  const std::unique_ptr<DecodeState> prompt_state =
      model.prefill({examples[0].input_ids}, static_cast<int>(longest), lora);
  const int64_t vocab = model.vocab_size();
  std::vector<double> out(options.size(), 0.0);
  std::vector<std::unique_ptr<DecodeState>> states;
  for (size_t o = 0; o < options.size(); ++o) {
    out[o] -= cross_entropy(prompt_state->logits.data(), {examples[o].label_ids[0]}, vocab).ce_sum;
    states.push_back(prompt_state->clone());
  }
  for (size_t t = 1; t < longest; ++t) {  // feed label t-1, score label t
    std::vector<DecodeState*> active;
    std::vector<int32_t> tokens;
    std::vector<size_t> which;
    for (size_t o = 0; o < options.size(); ++o)
      if (examples[o].label_ids.size() > t) {
        active.push_back(states[o].get());
        tokens.push_back(examples[o].label_ids[t - 1]);
        which.push_back(o);
      }
    model.decode_steps(active, tokens);
    for (size_t i = 0; i < active.size(); ++i)
      out[which[i]] -=
          cross_entropy(active[i]->logits.data(), {examples[which[i]].label_ids[t]}, vocab).ce_sum;
  }
  return out;
}

}  // namespace

std::vector<std::vector<double>> option_log_likelihoods(const Model& model,
                                                        const std::vector<std::string>& prompts,
                                                        const std::vector<std::string>& options,
                                                        const OptionScoreOptions& settings) {
  check(!options.empty(), "option scoring needs at least one answer option");
  if (settings.shared_prefix) {
    std::vector<std::vector<double>> out;
    for (size_t q = 0; q < prompts.size(); ++q) {
      out.push_back(shared_prefix_scores(model, prompts[q], options, settings.lora));
      if (settings.on_progress)
        settings.on_progress((q + 1) * options.size(), prompts.size() * options.size());
    }
    return out;
  }
  std::vector<Example> pairs;  // question-major: pairs[q * options + o]
  pairs.reserve(prompts.size() * options.size());
  for (const std::string& prompt : prompts)
    for (const std::string& option : options) pairs.push_back(model.make_example(prompt, option));
  std::vector<std::vector<double>> out(prompts.size(), std::vector<double>(options.size()));
  for_each_batch(pairs, std::max(1, settings.batch_size),
                 [&](size_t first, const std::vector<Example>& batch) {
                   const std::vector<ExampleLoss> losses = model.score(batch, settings.lora);
                   for (size_t i = 0; i < losses.size(); ++i)
                     out[(first + i) / options.size()][(first + i) % options.size()] =
                         -losses[i].ce_sum;
                   if (settings.on_progress)
                     settings.on_progress(first + batch.size(), pairs.size());
                 });
  return out;
}

namespace {

size_t code_points(const std::string& text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

}  // namespace

size_t best_option(const std::vector<double>& log_likelihoods,
                   const std::vector<std::string>& options, bool length_normalized) {
  check(!options.empty() && log_likelihoods.size() == options.size(),
        "{} log-likelihoods for {} options", log_likelihoods.size(), options.size());
  size_t best = 0;
  double best_score = 0;
  for (size_t i = 0; i < options.size(); ++i) {
    const double length = length_normalized ? std::max<size_t>(1, code_points(options[i])) : 1;
    const double score = log_likelihoods[i] / length;
    if (i == 0 || score > best_score) best = i, best_score = score;
  }
  return best;
}

}  // namespace lorahub

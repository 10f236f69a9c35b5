#include "eval/option_scoring.h"

#include <algorithm>

#include "core/error.h"
#include "eval/score.h"

namespace lorahub {

namespace {

// log P(option | prompt) of every option of a batch of questions: the prompts prefilled together
// once, each option teacher-forced on a copy of that state (all questions' rows of it), all
// options' steps in one batched decode_steps; a row whose option has no more tokens is left out
// of the step (a negative token). `out[q][o]` gets the scores of prompts[q].
void shared_prefix_scores(const Model& model, const std::vector<std::string>& prompts,
                          const std::vector<std::string>& options, const SequenceLora& lora,
                          std::vector<std::vector<double>>& out) {
  const size_t nq = prompts.size(), no = options.size();
  std::vector<std::vector<Example>> examples(nq);  // [question][option]
  std::vector<std::vector<int32_t>> prompt_ids;
  size_t longest = 0;
  for (size_t q = 0; q < nq; ++q) {
    for (const std::string& option : options) {
      examples[q].push_back(model.make_example(prompts[q], option));
      check(!examples[q].back().label_ids.empty(), "option '{}' has no tokens", option);
      longest = std::max(longest, examples[q].back().label_ids.size());
    }
    // make_example tokenizes the prompt apart from the option: the same ids for every option.
    prompt_ids.push_back(examples[q][0].input_ids);
  }
  const std::unique_ptr<DecodeState> prompt_state =
      model.prefill(prompt_ids, static_cast<int>(longest), lora);
  const int64_t vocab = model.vocab_size();
  auto label = [&](size_t q, size_t o) -> const std::vector<int32_t>& {
    return examples[q][o].label_ids;
  };
  std::vector<std::unique_ptr<DecodeState>> states;
  for (size_t o = 0; o < no; ++o) {
    for (size_t q = 0; q < nq; ++q)
      out[q][o] -=
          cross_entropy(prompt_state->logits.data() + q * vocab, {label(q, o)[0]}, vocab).ce_sum;
    states.push_back(prompt_state->clone());
  }
  for (size_t t = 1; t < longest; ++t) {  // feed label t-1, score label t
    std::vector<DecodeState*> active;
    std::vector<size_t> which;
    std::vector<int32_t> tokens;
    for (size_t o = 0; o < no; ++o) {
      bool any = false;
      for (size_t q = 0; q < nq; ++q) any |= label(q, o).size() > t;
      if (!any) continue;  // this option's copy is done for every question
      active.push_back(states[o].get());
      which.push_back(o);
      for (size_t q = 0; q < nq; ++q)
        tokens.push_back(label(q, o).size() > t ? label(q, o)[t - 1] : -1);
    }
    model.decode_steps(active, tokens);
    for (size_t i = 0; i < active.size(); ++i)
      for (size_t q = 0; q < nq; ++q)
        if (label(q, which[i]).size() > t)
          out[q][which[i]] -=
              cross_entropy(active[i]->logits.data() + q * vocab, {label(q, which[i])[t]}, vocab)
                  .ce_sum;
  }
}

}  // namespace

std::vector<std::vector<double>> option_log_likelihoods(const Model& model,
                                                        const std::vector<std::string>& prompts,
                                                        const std::vector<std::string>& options,
                                                        const OptionScoreOptions& settings) {
  check(!options.empty(), "option scoring needs at least one answer option");
  if (settings.shared_prefix) {
    std::vector<std::vector<double>> out(prompts.size(), std::vector<double>(options.size(), 0.0));
    const size_t step = static_cast<size_t>(std::max(1, settings.batch_size));
    for (size_t first = 0; first < prompts.size(); first += step) {
      const size_t end = std::min(prompts.size(), first + step);
      std::vector<std::vector<double>> part(end - first, std::vector<double>(options.size(), 0.0));
      shared_prefix_scores(model, {prompts.begin() + first, prompts.begin() + end}, options,
                           settings.lora, part);
      std::move(part.begin(), part.end(), out.begin() + first);
      if (settings.on_progress)
        settings.on_progress(end * options.size(), prompts.size() * options.size());
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

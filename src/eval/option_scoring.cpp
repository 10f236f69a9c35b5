#include "eval/option_scoring.h"

#include <algorithm>

#include "core/error.h"
#include "eval/score.h"

namespace lorahub {

std::vector<std::vector<double>> option_log_likelihoods(const Model& model,
                                                        const std::vector<std::string>& prompts,
                                                        const std::vector<std::string>& options,
                                                        const OptionScoreOptions& settings) {
  check(!options.empty(), "option scoring needs at least one answer option");
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

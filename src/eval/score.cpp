#include "eval/score.h"

#include <algorithm>

#include "core/error.h"

namespace lorahub {

std::vector<Example> tokenize_examples(const Model& model, const std::vector<TextExample>& rows,
                                       const std::string& source) {
  std::vector<Example> examples;
  for (const TextExample& row : rows) {
    check(row.output.has_value(), "{}:{}: scoring needs an 'output' (or 'completion')", source,
          row.line);
    examples.push_back(model.make_example(row.input, *row.output));
  }
  return examples;
}

void for_each_batch(const std::vector<Example>& examples, int batch_size,
                    const std::function<void(size_t, const std::vector<Example>&)>& f) {
  const size_t step = batch_size > 0 ? static_cast<size_t>(batch_size) : examples.size();
  for (size_t first = 0; first < examples.size(); first += step) {
    const size_t last = std::min(examples.size(), first + step);
    f(first, std::vector<Example>(examples.begin() + first, examples.begin() + last));
  }
}

ScoreReport score_examples(const Model& model, const std::vector<Example>& examples, int batch_size,
                           const SequenceLora& lora) {
  ScoreReport report;
  for_each_batch(examples, batch_size, [&](size_t, const std::vector<Example>& batch) {
    const auto losses = model.score(batch, lora);
    report.examples.insert(report.examples.end(), losses.begin(), losses.end());
  });
  double ce = 0.0;
  int64_t tokens = 0;
  for (const ExampleLoss& l : report.examples) {
    ce += l.ce_sum;
    tokens += l.tokens;
  }
  report.batch_loss = tokens > 0 ? ce / static_cast<double>(tokens) : 0.0;
  return report;
}

double token_mean(const ExampleLoss& l) {
  return l.tokens > 0 ? l.ce_sum / static_cast<double>(l.tokens) : 0.0;
}

}  // namespace lorahub

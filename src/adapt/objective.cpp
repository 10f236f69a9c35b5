#include "adapt/objective.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "lora/compose.h"

namespace lorahub {

LossMode parse_loss_mode(const std::string& name) {
  if (name == "reference") return LossMode::kReference;
  if (name == "example-mean") return LossMode::kExampleMean;
  fail("unknown loss mode '{}' (known: reference, example-mean)", name);
}

const char* loss_mode_name(LossMode mode) {
  return mode == LossMode::kReference ? "reference" : "example-mean";
}

Objective::Objective(Model& model, const ModuleSet& modules, std::vector<Example> examples,
                     ObjectiveOptions options)
    : model_(model), modules_(modules), examples_(std::move(examples)), options_(options) {
  check(!examples_.empty(), "objective: no examples");
  check(options_.batch_size >= 0, "objective: batch size must be >= 0, got {}",
        options_.batch_size);
  for (size_t i = 0; i < examples_.size(); ++i) {
    // As the HF tokenizer truncates: the first max_length - 1 tokens and the closing one.
    truncate_keep_last(examples_[i].input_ids, options_.max_length);
    truncate_keep_last(examples_[i].label_ids, options_.max_length);
    check(!examples_[i].label_ids.empty(), "objective: example {} has no output tokens", i + 1);
  }
}

double Objective::penalty(const Point& w) const {
  if (options_.regularizer) return options_.regularizer(w);
  double sum = 0;
  for (double v : w) sum += std::abs(v);
  return options_.l1 * sum / static_cast<double>(w.size());
}

double Objective::loss_of_current_model() {
  const size_t n = examples_.size();
  const size_t batch = options_.batch_size > 0 ? static_cast<size_t>(options_.batch_size) : n;
  double total = 0;
  for (size_t begin = 0; begin < n; begin += batch) {
    const size_t end = std::min(n, begin + batch);
    const std::vector<Example> part(examples_.begin() + begin, examples_.begin() + end);
    const std::vector<ExampleLoss> losses = model_.score(part);
    check(losses.size() == part.size(), "objective: the model scored {} of {} examples",
          losses.size(), part.size());
    if (options_.mode == LossMode::kReference) {
      double ce = 0;
      int64_t tokens = 0;
      for (const ExampleLoss& l : losses) {
        ce += l.ce_sum;
        tokens += l.tokens;
      }
      total += ce / static_cast<double>(tokens);  // transformers' batch loss
    } else {
      for (const ExampleLoss& l : losses) total += l.ce_sum / static_cast<double>(l.tokens);
    }
  }
  return total / static_cast<double>(n);
}

double Objective::loss(const Point& w) {
  check(w.size() == modules_.size(), "objective: {} weights for {} modules", w.size(),
        modules_.size());
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const LoraMap lora = to_lora_map(combine_modules(modules_, w, options_.combine));
  const auto composed = Clock::now();
  model_.set_lora(&lora);
  double value = 0;
  try {
    value = loss_of_current_model();
    times_.compose_seconds += std::chrono::duration<double>(composed - start).count();
    times_.forward_seconds += std::chrono::duration<double>(Clock::now() - composed).count();
    ++times_.evaluations;
  } catch (...) {
    model_.set_lora(nullptr);  // never leave the model pointing at a dead map
    throw;
  }
  model_.set_lora(nullptr);
  return value;
}

double Objective::operator()(const Point& w) {
  return loss(w) + penalty(w);
}

std::vector<double> Objective::evaluate(const std::vector<Point>& points) {
  std::vector<double> values;
  values.reserve(points.size());
  for (const Point& w : points) values.push_back((*this)(w));
  return values;
}

}  // namespace lorahub

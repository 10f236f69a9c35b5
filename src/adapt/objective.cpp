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

Objective::Objective(const Model& model, const ModuleSet& modules, std::vector<Example> examples,
                     ObjectiveOptions options)
    : model_(model),
      modules_(modules),
      examples_(std::move(examples)),
      options_(options),
      combiner_(modules, options.combine) {
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

namespace {
constexpr size_t kMaxSequences = 64;
}  // namespace

double Objective::batch_loss(const ExampleLoss* losses, size_t n) const {
  double total = 0;
  if (options_.mode == LossMode::kReference) {
    double ce = 0;
    int64_t tokens = 0;
    for (size_t i = 0; i < n; ++i) {
      ce += losses[i].ce_sum;
      tokens += losses[i].tokens;
    }
    total = ce / static_cast<double>(tokens);  // transformers' batch loss
  } else {
    for (size_t i = 0; i < n; ++i)
      total += losses[i].ce_sum / static_cast<double>(losses[i].tokens);
  }
  return total;
}

double Objective::loss(const Point& w) {
  return losses({w}).front();
}

std::vector<double> Objective::losses(const std::vector<Point>& points) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  std::vector<std::shared_ptr<const BoundLora>> adapters;
  for (const Point& w : points) {
    check(w.size() == modules_.size(), "objective: {} weights for {} modules", w.size(),
          modules_.size());
    auto lora = std::make_shared<const LoraMap>(to_lora_map(combiner_(w)));
    adapters.push_back(model_.bind_lora(std::move(lora)));
  }
  const auto composed = Clock::now();
  const size_t n = examples_.size();
  const size_t batch = options_.batch_size > 0 ? static_cast<size_t>(options_.batch_size) : n;
  std::vector<double> totals(points.size(), 0.0);
  for (size_t begin = 0; begin < n; begin += batch) {
    const size_t end = std::min(n, begin + batch), size = end - begin;
    // The batch once per point, the point's adapter on its copies; at most kMaxSequences
    // sequences per forward (the logits of all label tokens are held at once).
    const size_t per_call = std::max<size_t>(1, kMaxSequences / size);
    for (size_t p0 = 0; p0 < points.size(); p0 += per_call) {
      const size_t p1 = std::min(points.size(), p0 + per_call);
      std::vector<Example> rows;
      SequenceLora lora;
      for (size_t p = p0; p < p1; ++p)
        for (size_t i = begin; i < end; ++i) {
          rows.push_back(examples_[i]);
          lora.push_back(adapters[p].get());
        }
      const std::vector<ExampleLoss> scored = model_.score(rows, lora);
      check(scored.size() == rows.size(), "objective: the model scored {} of {} examples",
            scored.size(), rows.size());
      for (size_t p = p0; p < p1; ++p) totals[p] += batch_loss(&scored[(p - p0) * size], size);
    }
  }
  for (double& t : totals) t /= static_cast<double>(n);
  times_.compose_seconds += std::chrono::duration<double>(composed - start).count();
  times_.forward_seconds += std::chrono::duration<double>(Clock::now() - composed).count();
  times_.evaluations += static_cast<int>(points.size());
  return totals;
}

double Objective::operator()(const Point& w) {
  return loss(w) + penalty(w);
}

std::vector<double> Objective::evaluate(const std::vector<Point>& points) {
  std::vector<double> values = losses(points);
  for (size_t p = 0; p < points.size(); ++p) values[p] += penalty(points[p]);
  return values;
}

}  // namespace lorahub

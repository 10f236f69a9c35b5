// The LoraHub objective: compose the modules with weights w, score the few examples with the
// model, add the L1 penalty. Two loss modes:
//
//  * kReference (default) reproduces lorahub 0.1.0's default_get_loss exactly (DESIGN §1.3):
//    each batch's loss is transformers' token-mean cross-entropy over the batch
//    (Σ CE / Σ label tokens), the batch losses are summed and the sum is divided by the number
//    of examples. With everything in one batch of 5 the loss is the token-mean CE / 5: an odd
//    scale, but it is what the reference optimizes, and it sets how much the penalty weighs.
//  * kExampleMean is the plain mean over examples of each example's token-mean CE: every
//    example counts the same whatever its length or the batching.
//
// Both add 0.05 · (Σ|wᵢ|) / N (default_l1_regularization).
//
// One reference behaviour we deliberately do not copy: in lorahub 0.1.0 (with peft 0.21) the
// cached state dict of the *last* module shares storage with the live adapter parameters
// (load_base_model_and_lora_modules re-wraps the same base model per module), so each get_score
// call overwrites that module's tensors with the previous composition and the search runs on a
// history-dependent objective. We compute what get_score means to compute; the parity test
// (tests/parity/test_lorahub_reference.py) compares against a de-aliased copy of its cache and
// documents the bug.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "adapt/optimizer.h"
#include "lora/combine.h"
#include "lora/module_set.h"
#include "models/model.h"

namespace lorahub {

enum class LossMode { kReference, kExampleMean };

LossMode parse_loss_mode(const std::string& name);  // "reference" | "example-mean"
const char* loss_mode_name(LossMode mode);

struct ObjectiveOptions {
  LossMode mode = LossMode::kReference;
  int batch_size = 0;  // 0 = all examples in one batch (the reference's default)
  double l1 = 0.05;    // weight of the L1 penalty
  // Replaces the L1 penalty when set (the reference's get_regular hook).
  std::function<double(const Point& w)> regularizer = nullptr;
  int64_t max_length = 2048;  // the reference tokenizes with truncation at 2048 tokens
  // How w composes the modules (lora/combine.h); recomputed for every evaluation, DARE's masks
  // seeded so that the objective stays a function of w.
  CombineOptions combine = CombineOptions();
};

// Where an objective's time went, summed over its evaluations.
struct ObjectiveTimes {
  double compose_seconds = 0.0;  // combining the modules for w (and building the side path)
  double forward_seconds = 0.0;  // scoring the examples with the model
  int evaluations = 0;
};

class Objective {
 public:
  // `examples` are tokenized (Model::make_example); they are truncated here. Throws Error when
  // there are no examples, or an example has no label tokens.
  Objective(const Model& model, const ModuleSet& modules, std::vector<Example> examples,
            ObjectiveOptions options = {});

  // loss(w) + penalty(w).
  double operator()(const Point& w);
  // One value per point, in order (the BatchObjective the optimizers take). All points are
  // scored in shared forwards: each example once per point, each with its point's adapter (the
  // base products once for all rows, the low-rank path per point).
  std::vector<double> evaluate(const std::vector<Point>& points);

  double loss(const Point& w);                                   // the loss term alone
  std::vector<double> losses(const std::vector<Point>& points);  // one per point
  double penalty(const Point& w) const;
  size_t dimension() const { return modules_.size(); }
  size_t example_count() const { return examples_.size(); }
  const ObjectiveTimes& times() const { return times_; }
  CombineMethod combine_method() const { return options_.combine.method; }
  // The composition of any w as this objective makes it (its w-independent part prepared once).
  const Combiner& combiner() const { return combiner_; }

 private:
  // The loss term of one batch of examples from their per-example losses.
  double batch_loss(const ExampleLoss* losses, size_t n) const;

  const Model& model_;
  const ModuleSet& modules_;
  std::vector<Example> examples_;
  ObjectiveOptions options_;
  Combiner combiner_;  // options_.combine prepared for modules_ (lora/combine.h)
  ObjectiveTimes times_;
};

}  // namespace lorahub

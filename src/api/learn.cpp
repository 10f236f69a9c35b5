// LoraHub learning through the public API: adapt/objective + adapt/learner on a loaded model.
#include "adapt/learner.h"
#include "adapt/objective.h"
#include "api/internal.h"
#include "core/error.h"

namespace lorahub::api {

namespace {

ObjectiveOptions objective_options(const LearnOptions& options) {
  ObjectiveOptions o;
  o.mode = parse_loss_mode(options.loss);
  check(options.batch_size >= 0, "learn: batch_size must be >= 0, got {}", options.batch_size);
  o.batch_size = options.batch_size;
  o.l1 = options.l1;
  o.regularizer = options.regularizer;
  o.combine = to_combine_options(options.compose);
  return o;
}

}  // namespace

LearnResult learn(std::shared_ptr<const Model> model, const ModuleSet& modules,
                  const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                  const LearnOptions& options) {
  check(model != nullptr, "learn: no model");
  check(inputs.size() == outputs.size(), "learn: {} inputs but {} outputs", inputs.size(),
        outputs.size());
  check(!inputs.empty(), "learn: no examples");
  const ObjectiveOptions objective_opts = objective_options(options);
  for (size_t i = 0; i < modules.size(); ++i) check_adapter_fits(*model, *modules.module(i));
  LearnResult out;
  // The objective sets each composition on the model itself; holding the model's adapter lock
  // (with none set) keeps every other call off it meanwhile.
  with_adapter(*model, nullptr, [&](lorahub::Model& m) {
    std::vector<Example> examples;
    for (size_t i = 0; i < inputs.size(); ++i)
      examples.push_back(m.make_example(inputs[i], outputs[i]));
    Objective objective(m, modules.impl().set, std::move(examples), objective_opts);
    lorahub::LearnOptions learn_opts;
    learn_opts.optimizer = options.optimizer;
    learn_opts.steps = options.steps;
    learn_opts.seed = options.seed;
    learn_opts.progress = false;
    learn_opts.on_evaluation = [&](const Evaluation& e, double) {
      LearnStep step{e.step, e.w, e.value, e.value - objective.penalty(e.w)};
      out.history.push_back(step);
      if (options.on_step && !options.on_step(step)) throw Cancelled();
    };
    const lorahub::LearnResult r = lorahub::learn(objective, learn_opts);
    out.weights = r.weights;
    out.objective = r.objective;
    out.seconds = r.seconds;
  });
  out.adapter = modules.compose(out.weights, options.compose);
  return out;
}

}  // namespace lorahub::api

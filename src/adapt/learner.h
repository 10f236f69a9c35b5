// LoraHub learning: find weights for the module set that minimize the objective on a few
// examples, with a gradient-free optimizer, and report every step.
#pragma once
#include <string>
#include <vector>

#include "adapt/objective.h"
#include "adapt/optimizer.h"

namespace lorahub {

struct LearnOptions {
  std::string optimizer = "cobyla";
  int steps = 40;  // evaluation budget
  uint64_t seed = 42;
  bool progress = true;              // per-step line/bar on stderr (core/progress.h)
  EvaluationCallback on_evaluation;  // after every evaluation (may throw to stop the search)
};

struct LearnResult {
  std::vector<double> weights;  // the best evaluated weights
  double objective = 0.0;       // their objective value
  std::vector<Evaluation> history;
  // Seconds from the start of learn() to the end of each evaluation (history's order): when the
  // search reached a value, for time-to-quality measurements (bench/run.py).
  std::vector<double> elapsed;
  double seconds = 0.0;
};

// Throws Error for steps < 1 or an unknown optimizer before any evaluation is spent.
LearnResult learn(Objective& objective, const LearnOptions& options);

}  // namespace lorahub

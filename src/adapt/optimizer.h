// Gradient-free optimizers for the LoraHub weights: minimize f(w) over the box [lower, upper]^N
// with at most `budget` evaluations, deterministically for a given seed, and return the best
// point actually evaluated (never an unevaluated model prediction).
//
// Objectives are batched: an optimizer hands over every point it can evaluate independently
// (a whole CMA-ES generation; one point at a time for the sequential COBYLA/BOBYQA), so an
// evaluator that can score several weight vectors at once gets the chance to.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lorahub {

using Point = std::vector<double>;
// Scores each point; returns one value per point, in order.
using BatchObjective = std::function<std::vector<double>(const std::vector<Point>& points)>;

struct OptimizeOptions {
  int budget = 40;  // maximum number of evaluations
  uint64_t seed = 42;
  double lower = -1.5, upper = 1.5;
  // The reference (nevergrad Array(lower=-1.5, upper=1.5)) works in a standardized space with
  // sigma 0.5, so COBYLA's first trial steps are 0.5 in weight units (confirmed by tracing
  // nevergrad 1.0.12: its second point is w = (0.5, 0, ..., 0)).
  double initial_step = 0.5;
  Point start;  // empty = all zeros (the reference starts at w = 0)
};

struct Evaluation {
  int step = 0;  // 1-based evaluation number
  Point w;
  double value = 0.0;
};

struct OptimizeResult {
  Point best_w;
  double best = 0.0;
  std::vector<Evaluation> history;  // every evaluation, in order
};

// Called after every evaluation with the history so far (for progress and checkpoints).
using EvaluationCallback = std::function<void(const Evaluation& e, double best_so_far)>;

// Names accepted by optimize(): "cobyla", "bobyqa", "cmaes", "oneplusone".
const std::vector<std::string>& optimizer_names();

// Throws Error for an unknown name, dim < 1, budget < 1, an empty or inverted box, or a start
// point of the wrong size or outside the box. Non-finite objective values count as +infinity.
OptimizeResult optimize(const std::string& name, int dim, const BatchObjective& objective,
                        const OptimizeOptions& options, const EvaluationCallback& on_eval = {});

// CMA-ES population size as nevergrad's CMA picks it: 4 + floor(3 ln N).
int cmaes_population(int dim);

// The lower Cholesky factor L of a symmetric positive definite C (C = L L^T), by which CMA-ES
// samples x = m + sigma L z. Unlike an eigenbasis B D (which Hansen's CMA-ES samples through),
// L is unique and continuous in C: after one generation C has a many-fold repeated eigenvalue,
// and the eigenbasis inside that eigenspace follows rounding, so samples through it differed
// between compilers and CPUs for the same seed. Eigenvalues are floored at 1e-20 first.
std::vector<std::vector<double>> cholesky_lower(const std::vector<std::vector<double>>& c);

}  // namespace lorahub

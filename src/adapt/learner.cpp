#include "adapt/learner.h"

#include <fmt/format.h>

#include <chrono>
#include <memory>

#include "core/error.h"
#include "core/progress.h"

namespace lorahub {

LearnResult learn(Objective& objective, const LearnOptions& options) {
  check(options.steps >= 1, "learn: the number of steps must be at least 1, got {}", options.steps);
  const auto start = std::chrono::steady_clock::now();
  OptimizeOptions opt;
  opt.budget = options.steps;
  opt.seed = options.seed;
  std::unique_ptr<Progress> progress;
  if (options.progress)
    progress = std::make_unique<Progress>(fmt::format("learn ({})", options.optimizer),
                                          static_cast<size_t>(options.steps));
  std::vector<double> elapsed;
  auto seconds_since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  auto on_eval = [&](const Evaluation& e, double best) {
    elapsed.push_back(seconds_since_start());
    if (options.on_evaluation) options.on_evaluation(e, best);
    if (progress)
      progress->update(static_cast<size_t>(e.step),
                       fmt::format("objective {:.6f} best {:.6f}", e.value, best));
  };
  BatchObjective batch = [&](const std::vector<Point>& points) {
    return objective.evaluate(points);
  };
  OptimizeResult r =
      optimize(options.optimizer, static_cast<int>(objective.dimension()), batch, opt, on_eval);
  LearnResult out;
  out.weights = std::move(r.best_w);
  out.objective = r.best;
  out.history = std::move(r.history);
  out.elapsed = std::move(elapsed);
  out.seconds = seconds_since_start();
  if (progress)
    progress->finish(fmt::format("best objective {:.6f} after {} evaluations", out.objective,
                                 out.history.size()));
  return out;
}

}  // namespace lorahub

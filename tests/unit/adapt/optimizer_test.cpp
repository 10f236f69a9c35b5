// Planted problems: objectives whose optimum we know, so each optimizer can be held to reaching
// within 5% of it inside its budget, deterministically for a seed.
#include <gtest/gtest.h>

#include <cmath>

#include "adapt/optimizer.h"
#include "core/error.h"

namespace lorahub {
namespace {

// f(w) = 1 + Σ (wᵢ - w*ᵢ)²: optimum 1 at the planted w*, inside the box.
struct PlantedQuadratic {
  Point target;
  int calls = 0;
  BatchObjective batch() {
    return [this](const std::vector<Point>& points) {
      std::vector<double> values;
      for (const Point& w : points) {
        ++calls;
        double v = 1.0;
        for (size_t i = 0; i < w.size(); ++i) v += (w[i] - target[i]) * (w[i] - target[i]);
        values.push_back(v);
      }
      return values;
    };
  }
};

struct Case {
  const char* name;
  int budget;
};

class PlantedOptimizer : public ::testing::TestWithParam<Case> {};

TEST_P(PlantedOptimizer, ReachesWithinFivePercentOfTheOptimum) {
  PlantedQuadratic f{{0.4, -0.8, 1.1, 0.2, -0.3}};
  OptimizeOptions o;
  o.budget = GetParam().budget;
  o.seed = 7;
  const OptimizeResult r = optimize(GetParam().name, 5, f.batch(), o);
  EXPECT_LE(r.best, 1.05) << GetParam().name;
  EXPECT_LE(f.calls, o.budget);
  EXPECT_EQ(static_cast<int>(r.history.size()), f.calls);
  // The result is the best point evaluated, with its recorded value.
  double best = 1e300;
  for (const Evaluation& e : r.history) best = std::min(best, e.value);
  EXPECT_EQ(r.best, best);
  for (double v : r.best_w) {
    EXPECT_GE(v, -1.5);
    EXPECT_LE(v, 1.5);
  }
}

INSTANTIATE_TEST_SUITE_P(All, PlantedOptimizer,
                         ::testing::Values(Case{"cobyla", 40}, Case{"bobyqa", 40},
                                           Case{"cmaes", 300}, Case{"oneplusone", 300}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Optimizer, SameSeedSameHistory) {
  for (const std::string& name : optimizer_names()) {
    PlantedQuadratic f1{{0.3, -0.2, 0.9}}, f2{{0.3, -0.2, 0.9}};
    OptimizeOptions o;
    o.budget = 25;
    o.seed = 3;
    const OptimizeResult a = optimize(name, 3, f1.batch(), o);
    const OptimizeResult b = optimize(name, 3, f2.batch(), o);
    ASSERT_EQ(a.history.size(), b.history.size()) << name;
    for (size_t i = 0; i < a.history.size(); ++i) EXPECT_EQ(a.history[i].w, b.history[i].w) << name;
  }
}

TEST(Optimizer, CobylaStartsAtZeroWithHalfSteps) {
  // nevergrad's NGOpt -> COBYLA evaluates w = 0 first, then steps of 0.5 along the axes.
  PlantedQuadratic f{{0.3, -0.2, 0.9}};
  OptimizeOptions o;
  o.budget = 3;
  const OptimizeResult r = optimize("cobyla", 3, f.batch(), o);
  ASSERT_EQ(r.history.size(), 3u);
  EXPECT_EQ(r.history[0].w, (Point{0, 0, 0}));
  EXPECT_NEAR(
      std::abs(r.history[1].w[0]) + std::abs(r.history[1].w[1]) + std::abs(r.history[1].w[2]), 0.5,
      1e-12);
}

// What learn returns is what the reference's nevergrad returns: its COBYLA (NGOpt's choice)
// runs scipy's COBYLA in a thread with maxiter = the budget, and the recommendation is that
// run's result x (the best vertex it holds) or, if the thread has not returned, the best
// evaluated point by its (here noiseless) loss: the best point evaluated either way. A 2-module
// search that returned [0.5, 0.5] "while its best objective was at step 3" was this: COBYLA's
// third point is the second one plus a step along the next axis when the second was better
// (Powell's simplex pivots on the best vertex), so step 3 evaluates (0.5, 0.5) itself.
TEST(Optimizer, CobylaReturnsTheBestEvaluatedPointWhereverTheSearchEnds) {
  PlantedQuadratic f{{0.5, 0.5}};  // the optimum is COBYLA's third point
  OptimizeOptions o;
  o.budget = 40;
  const OptimizeResult r = optimize("cobyla", 2, f.batch(), o);
  ASSERT_GE(r.history.size(), 10u);
  EXPECT_EQ(r.history[0].w, (Point{0, 0}));
  EXPECT_EQ(r.history[1].w, (Point{0.5, 0}));
  EXPECT_EQ(r.history[2].w, (Point{0.5, 0.5}));
  EXPECT_EQ(r.best_w, r.history[2].w);
  EXPECT_EQ(r.best, r.history[2].value);
  EXPECT_EQ(r.best, 1.0);
  size_t elsewhere = 0;  // the search goes on evaluating other points after it
  for (size_t i = 3; i < r.history.size(); ++i) {
    EXPECT_GE(r.history[i].value, r.best) << i;
    elsewhere += r.history[i].w != r.best_w;
  }
  EXPECT_GT(elsewhere, 0u);
  EXPECT_NE(r.history.back().w, r.best_w);  // not the last point evaluated

  // When the best comes later than the start, it is still the one returned (not the first).
  PlantedQuadratic g{{0.3, -0.2}};
  const OptimizeResult later = optimize("cobyla", 2, g.batch(), o);
  size_t at = 0;
  for (size_t i = 0; i < later.history.size(); ++i)
    if (later.history[i].value < later.history[at].value) at = i;
  EXPECT_GT(at, 2u);
  EXPECT_EQ(later.best_w, later.history[at].w);
}

TEST(Optimizer, CmaesPopulationAsNevergrad) {
  EXPECT_EQ(cmaes_population(20), 12);
  EXPECT_EQ(cmaes_population(5), 8);
  EXPECT_EQ(cmaes_population(1), 4);
}

TEST(Optimizer, CmaesEvaluatesWholeGenerations) {
  std::vector<size_t> batch_sizes;
  BatchObjective f = [&](const std::vector<Point>& points) {
    batch_sizes.push_back(points.size());
    return std::vector<double>(points.size(), 1.0);
  };
  OptimizeOptions o;
  o.budget = 30;
  optimize("cmaes", 20, f, o);
  EXPECT_EQ(batch_sizes, (std::vector<size_t>{12, 12, 6}));
}

// CMA-ES samples through the Cholesky factor: C = L L^T, and a rounding-level change of a C with
// a 17-fold repeated eigenvalue (as after one generation on 20 modules) moves L by rounding only,
// so the same seed draws the same candidates on every machine.
TEST(Optimizer, CmaesSamplingFactorIsExactAndContinuous) {
  const int n = 20;
  std::vector<std::vector<double>> c(n, std::vector<double>(n, 0.0));
  for (int i = 0; i < n; ++i) c[i][i] = 0.8;
  for (int r = 0; r < 3; ++r)  // a rank-3 update: eigenvalue 0.8 repeated 17 times
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) c[i][j] += 0.1 * std::sin(i + 3.0 * r) * std::sin(j + 3.0 * r);
  const auto l = cholesky_lower(c);
  double worst = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double v = 0;
      for (int k = 0; k < n; ++k) v += l[i][k] * l[j][k];
      worst = std::max(worst, std::abs(v - c[i][j]));
      if (j > i) EXPECT_EQ(l[i][j], 0.0);
    }
  EXPECT_LT(worst, 1e-14);

  auto nudged = c;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) nudged[i][j] += 1e-16 * std::cos(7.0 * i + j + (i * j) % 5);
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) nudged[j][i] = nudged[i][j];
  const auto l2 = cholesky_lower(nudged);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) EXPECT_NEAR(l2[i][j], l[i][j], 1e-13) << i << "," << j;
}

TEST(OptimizerMalformed, RejectsBadSettings) {
  PlantedQuadratic f{{0.0}};
  OptimizeOptions o;
  EXPECT_THROW(optimize("nelder", 1, f.batch(), o), Error);
  EXPECT_THROW(optimize("cobyla", 0, f.batch(), o), Error);
  o.budget = 0;
  EXPECT_THROW(optimize("cobyla", 1, f.batch(), o), Error);
  o.budget = 5;
  o.start = {std::nan("")};
  EXPECT_THROW(optimize("cobyla", 1, f.batch(), o), Error);
  o.start = {0.0, 0.0};
  EXPECT_THROW(optimize("cobyla", 1, f.batch(), o), Error);
}

TEST(OptimizerMalformed, NonFiniteObjectiveIsWorstNotBest) {
  for (const std::string& name : optimizer_names()) {
    int calls = 0;
    BatchObjective f = [&](const std::vector<Point>& points) {
      std::vector<double> values;
      for (const Point& w : points) values.push_back(++calls % 2 ? std::nan("") : 2.0 + w[0]);
      return values;
    };
    OptimizeOptions o;
    o.budget = 12;
    const OptimizeResult r = optimize(name, 2, f, o);
    EXPECT_TRUE(std::isfinite(r.best)) << name;
  }
}

TEST(OptimizerMalformed, ObjectiveErrorsPropagate) {
  for (const std::string& name : optimizer_names()) {
    BatchObjective f = [](const std::vector<Point>&) -> std::vector<double> {
      throw Error("model exploded");
    };
    OptimizeOptions o;
    try {
      optimize(name, 2, f, o);
      FAIL() << name;
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "model exploded") << name;
    }
  }
}

}  // namespace
}  // namespace lorahub

#include "adapt/optimizer.h"

#include <nlopt.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <numeric>
#include <random>

#include "core/error.h"

namespace lorahub {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Counts evaluations against the budget, keeps the history and the best point evaluated.
class Tracker {
 public:
  Tracker(const BatchObjective& objective, int budget, const EvaluationCallback& on_eval)
      : objective_(objective), budget_(budget), on_eval_(on_eval) {}

  int remaining() const { return budget_ - static_cast<int>(result_.history.size()); }

  // Scores the points (at most remaining() of them); non-finite values come back as +inf.
  std::vector<double> evaluate(const std::vector<Point>& points) {
    check(static_cast<int>(points.size()) <= remaining(), "optimizer: evaluation budget exceeded");
    std::vector<double> values = objective_(points);
    check(values.size() == points.size(), "objective returned {} values for {} points",
          values.size(), points.size());
    for (size_t i = 0; i < points.size(); ++i) {
      if (!std::isfinite(values[i])) values[i] = kInf;
      record(points[i], values[i]);
    }
    return values;
  }
  double evaluate_one(const Point& p) { return evaluate({p})[0]; }

  OptimizeResult take() { return std::move(result_); }

 private:
  void record(const Point& w, double value) {
    const int step = static_cast<int>(result_.history.size()) + 1;
    if (result_.history.empty() || value < result_.best) {
      result_.best = value;
      result_.best_w = w;
    }
    result_.history.push_back({step, w, value});
    if (on_eval_) on_eval_(result_.history.back(), result_.best);
  }

  const BatchObjective& objective_;
  int budget_;
  const EvaluationCallback& on_eval_;
  OptimizeResult result_;
};

// Maps any real x into [lo, hi] by reflecting at the bounds, as nevergrad's "bouncing"
// transform does, so that unbounded samplers (CMA-ES, ES) never leave the box.
double reflect_into(double x, double lo, double hi) {
  const double width = hi - lo;
  if (width <= 0) return lo;
  double t = std::fmod(x - lo, 2 * width);
  if (t < 0) t += 2 * width;
  if (t > width) t = 2 * width - t;
  return lo + t;
}

Point reflect_point(const Point& x, const OptimizeOptions& o) {
  Point y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = reflect_into(x[i], o.lower, o.upper);
  return y;
}

// ---- NLopt (COBYLA, BOBYQA): sequential, one evaluation per call --------------------------

void run_nlopt(nlopt::algorithm algorithm, int dim, const OptimizeOptions& o, Tracker& tracker) {
  nlopt::srand(o.seed);  // COBYLA/BOBYQA are deterministic; this pins any randomized fallback
  nlopt::opt opt(algorithm, static_cast<unsigned>(dim));
  opt.set_lower_bounds(std::vector<double>(dim, o.lower));
  opt.set_upper_bounds(std::vector<double>(dim, o.upper));
  opt.set_initial_step(std::vector<double>(dim, o.initial_step));
  opt.set_maxeval(tracker.remaining());
  // NLopt's C++ wrapper turns any exception from the objective into a bare "nlopt failure";
  // keep the real one and rethrow it after optimize() returns.
  struct Context {
    Tracker* tracker;
    std::exception_ptr error;
  } context{&tracker, nullptr};
  auto objective = [](unsigned n, const double* x, double*, void* data) -> double {
    auto& c = *static_cast<Context*>(data);
    if (c.tracker->remaining() <= 0) throw nlopt::forced_stop();
    double v = 0;
    try {
      v = c.tracker->evaluate_one(Point(x, x + n));
    } catch (...) {
      c.error = std::current_exception();
      throw nlopt::forced_stop();
    }
    // NLopt's model-based methods cannot digest inf; a huge finite value repels them the same.
    return std::isfinite(v) ? v : 1e300;
  };
  opt.set_min_objective(objective, &context);
  std::vector<double> x = o.start;
  double value = 0;
  try {
    opt.optimize(x, value);
  } catch (const nlopt::forced_stop&) {
    // budget spent (the tracker holds the best point) or the objective failed (rethrown below)
  } catch (const nlopt::roundoff_limited&) {
    // converged as far as floating point allows: the tracker holds the best point
  }
  if (context.error) std::rethrow_exception(context.error);
}

// ---- CMA-ES (Hansen's (mu/mu_w, lambda)-CMA-ES), ask/tell, one batch per generation --------

using Matrix = std::vector<std::vector<double>>;

// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations:
// C = V diag(values) V^T, with the eigenvectors as the columns of V.
void symmetric_eigen(Matrix a, Matrix& vectors, std::vector<double>& values) {
  const size_t n = a.size();
  vectors.assign(n, std::vector<double>(n, 0.0));
  for (size_t i = 0; i < n; ++i) vectors[i][i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (size_t p = 0; p < n; ++p)
      for (size_t q = p + 1; q < n; ++q) off += a[p][q] * a[p][q];
    if (off < 1e-30) break;
    for (size_t p = 0; p < n; ++p) {
      for (size_t q = p + 1; q < n; ++q) {
        if (std::abs(a[p][q]) < 1e-300) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < n; ++k) {  // A <- A J (columns p, q)
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; ++k) {  // A <- J^T A (rows p, q)
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; ++k) {
          const double vkp = vectors[k][p], vkq = vectors[k][q];
          vectors[k][p] = c * vkp - s * vkq;
          vectors[k][q] = s * vkp + c * vkq;
        }
      }
    }
  }
  values.resize(n);
  for (size_t i = 0; i < n; ++i) values[i] = std::max(a[i][i], 1e-20);
}

}  // namespace

Matrix cholesky_lower(const Matrix& c) {
  const size_t n = c.size();
  Matrix l(n, std::vector<double>(n, 0.0));
  for (size_t j = 0; j < n; ++j) {
    check(c[j].size() == n, "cholesky_lower: row {} has {} entries, expected {}", j, c[j].size(),
          n);
    double d = c[j][j];
    for (size_t k = 0; k < j; ++k) d -= l[j][k] * l[j][k];
    l[j][j] = std::sqrt(std::max(d, 1e-20));  // the eigenvalue floor of symmetric_eigen
    for (size_t i = j + 1; i < n; ++i) {
      double v = c[i][j];
      for (size_t k = 0; k < j; ++k) v -= l[i][k] * l[j][k];
      l[i][j] = v / l[j][j];
    }
  }
  return l;
}

namespace {

class CmaEs {
 public:
  CmaEs(const Point& mean, double sigma, uint64_t seed)
      : n_(static_cast<int>(mean.size())), mean_(mean), sigma_(sigma), rng_(seed) {
    lambda_ = cmaes_population(n_);
    mu_ = lambda_ / 2;
    for (int i = 0; i < mu_; ++i) weights_.push_back(std::log(mu_ + 0.5) - std::log(i + 1.0));
    const double sum = std::accumulate(weights_.begin(), weights_.end(), 0.0);
    double sum_sq = 0;
    for (double& w : weights_) {
      w /= sum;
      sum_sq += w * w;
    }
    mueff_ = 1 / sum_sq;
    const double n = n_;
    cc_ = (4 + mueff_ / n) / (n + 4 + 2 * mueff_ / n);
    cs_ = (mueff_ + 2) / (n + mueff_ + 5);
    c1_ = 2 / ((n + 1.3) * (n + 1.3) + mueff_);
    cmu_ = std::min(1 - c1_, 2 * (mueff_ - 2 + 1 / mueff_) / ((n + 2) * (n + 2) + mueff_));
    damps_ = 1 + 2 * std::max(0.0, std::sqrt((mueff_ - 1) / (n + 1)) - 1) + cs_;
    chi_n_ = std::sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n));
    pc_.assign(n_, 0.0);
    ps_.assign(n_, 0.0);
    cov_.assign(n_, std::vector<double>(n_, 0.0));
    for (int i = 0; i < n_; ++i) cov_[i][i] = 1.0;
    decompose();
  }

  int population() const { return lambda_; }

  // Samples `count` candidates x = m + sigma * L z, L L^T = C (unbounded; the caller reflects
  // them). The same distribution as Hansen's m + sigma * B D z, but the same draws on every
  // machine up to rounding (see cholesky_lower).
  std::vector<Point> ask(int count) {
    std::normal_distribution<double> normal;
    std::vector<Point> xs(count, Point(n_));
    for (auto& x : xs) {
      std::vector<double> z(n_);
      for (int i = 0; i < n_; ++i) z[i] = normal(rng_);
      for (int i = 0; i < n_; ++i) {
        double y = 0;
        for (int j = 0; j <= i; ++j) y += factor_[i][j] * z[j];
        x[i] = mean_[i] + sigma_ * y;
      }
    }
    return xs;
  }

  // Updates mean, paths, covariance and step size from a full generation.
  void tell(const std::vector<Point>& xs, const std::vector<double>& values) {
    std::vector<int> order(xs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int a, int b) { return values[a] < values[b]; });
    const Point old_mean = mean_;
    std::fill(mean_.begin(), mean_.end(), 0.0);
    for (int k = 0; k < mu_; ++k)
      for (int i = 0; i < n_; ++i) mean_[i] += weights_[k] * xs[order[k]][i];
    std::vector<double> step(n_);
    for (int i = 0; i < n_; ++i) step[i] = (mean_[i] - old_mean[i]) / sigma_;
    update_paths(step);
    update_covariance(xs, order, old_mean, step);
    double ps_norm = 0;
    for (double v : ps_) ps_norm += v * v;
    sigma_ *= std::exp((cs_ / damps_) * (std::sqrt(ps_norm) / chi_n_ - 1));
    ++generation_;
    decompose();
  }

 private:
  void update_paths(const std::vector<double>& step) {
    // C^{-1/2} step = B D^{-1} B^T step
    std::vector<double> bt(n_, 0.0), inv_sqrt_step(n_, 0.0);
    for (int j = 0; j < n_; ++j)
      for (int i = 0; i < n_; ++i) bt[j] += basis_[i][j] * step[i];
    for (int j = 0; j < n_; ++j) bt[j] /= std::sqrt(eigenvalues_[j]);
    for (int i = 0; i < n_; ++i)
      for (int j = 0; j < n_; ++j) inv_sqrt_step[i] += basis_[i][j] * bt[j];
    const double ks = std::sqrt(cs_ * (2 - cs_) * mueff_);
    double ps_norm = 0;
    for (int i = 0; i < n_; ++i) {
      ps_[i] = (1 - cs_) * ps_[i] + ks * inv_sqrt_step[i];
      ps_norm += ps_[i] * ps_[i];
    }
    const double decay = 1 - std::pow(1 - cs_, 2.0 * (generation_ + 1));
    hsig_ = std::sqrt(ps_norm / decay) / chi_n_ < 1.4 + 2 / (n_ + 1.0);
    const double kc = std::sqrt(cc_ * (2 - cc_) * mueff_);
    for (int i = 0; i < n_; ++i) pc_[i] = (1 - cc_) * pc_[i] + (hsig_ ? kc * step[i] : 0.0);
  }

  void update_covariance(const std::vector<Point>& xs, const std::vector<int>& order,
                         const Point& old_mean, const std::vector<double>&) {
    const double correction = hsig_ ? 0.0 : cc_ * (2 - cc_);
    for (int i = 0; i < n_; ++i) {
      for (int j = 0; j <= i; ++j) {
        double rank_mu = 0;
        for (int k = 0; k < mu_; ++k) {
          const Point& x = xs[order[k]];
          rank_mu += weights_[k] * (x[i] - old_mean[i]) * (x[j] - old_mean[j]);
        }
        rank_mu /= sigma_ * sigma_;
        const double v = (1 - c1_ - cmu_) * cov_[i][j] +
                         c1_ * (pc_[i] * pc_[j] + correction * cov_[i][j]) + cmu_ * rank_mu;
        cov_[i][j] = cov_[j][i] = v;
      }
    }
  }

  // B, D for C^{-1/2} (a matrix function: the same whatever basis the repeated eigenvalues get),
  // L for sampling.
  void decompose() {
    symmetric_eigen(cov_, basis_, eigenvalues_);
    factor_ = cholesky_lower(cov_);
  }

  int n_, lambda_ = 0, mu_ = 0, generation_ = 0;
  Point mean_;
  double sigma_;
  std::mt19937_64 rng_;
  std::vector<double> weights_;
  double mueff_ = 0, cc_ = 0, cs_ = 0, c1_ = 0, cmu_ = 0, damps_ = 0, chi_n_ = 0;
  bool hsig_ = true;
  std::vector<double> pc_, ps_, eigenvalues_;
  Matrix cov_, basis_, factor_;
};

void run_cmaes(int dim, const OptimizeOptions& o, Tracker& tracker) {
  CmaEs cma(o.start, o.initial_step, o.seed);
  while (tracker.remaining() > 0) {
    const int count = std::min(cma.population(), tracker.remaining());
    std::vector<Point> xs = cma.ask(count);
    std::vector<Point> bounded;
    for (const Point& x : xs) bounded.push_back(reflect_point(x, o));
    const std::vector<double> values = tracker.evaluate(bounded);
    if (count < cma.population()) break;  // a partial last generation only adds evaluations
    cma.tell(xs, values);
  }
}

// ---- (1+1)-ES with the one-fifth success rule ----------------------------------------------

void run_one_plus_one(int dim, const OptimizeOptions& o, Tracker& tracker) {
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> normal;
  Point parent = o.start;
  double parent_value = tracker.evaluate_one(parent);
  double sigma = o.initial_step;
  while (tracker.remaining() > 0) {
    Point child(dim);
    for (int i = 0; i < dim; ++i) child[i] = parent[i] + sigma * normal(rng);
    child = reflect_point(child, o);
    const double value = tracker.evaluate_one(child);
    // Growing by e^(1/3) on success and shrinking by e^(-1/12) on failure balances at a
    // success rate of 1/5 (Rechenberg's rule).
    if (value <= parent_value) {
      parent = std::move(child);
      parent_value = value;
      sigma *= std::exp(1.0 / 3);
    } else {
      sigma *= std::exp(-1.0 / 12);
    }
  }
}

void validate(const std::string& name, int dim, const OptimizeOptions& o) {
  const auto& names = optimizer_names();
  check(std::find(names.begin(), names.end(), name) != names.end(),
        "unknown optimizer '{}' (known: cobyla, bobyqa, cmaes, oneplusone)", name);
  check(dim >= 1, "optimizer: need at least one weight (got {} modules)", dim);
  check(o.budget >= 1, "optimizer: the budget (objective evaluations) must be at least 1, got {}",
        o.budget);
  check(std::isfinite(o.lower) && std::isfinite(o.upper) && o.lower < o.upper,
        "optimizer: invalid bounds [{}, {}]", o.lower, o.upper);
  check(std::isfinite(o.initial_step) && o.initial_step > 0,
        "optimizer: the initial step must be positive, got {}", o.initial_step);
  check(o.start.empty() || static_cast<int>(o.start.size()) == dim,
        "optimizer: start point has {} values for {} weights", o.start.size(), dim);
  for (double v : o.start)
    check(std::isfinite(v) && v >= o.lower && v <= o.upper,
          "optimizer: start value {} is outside [{}, {}]", v, o.lower, o.upper);
}

}  // namespace

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names{"cobyla", "bobyqa", "cmaes", "oneplusone"};
  return names;
}

int cmaes_population(int dim) {
  return 4 + static_cast<int>(std::floor(3 * std::log(static_cast<double>(dim))));
}

OptimizeResult optimize(const std::string& name, int dim, const BatchObjective& objective,
                        const OptimizeOptions& options, const EvaluationCallback& on_eval) {
  validate(name, dim, options);
  OptimizeOptions o = options;
  if (o.start.empty()) o.start.assign(dim, 0.0);
  Tracker tracker(objective, o.budget, on_eval);
  if (name == "cobyla") {
    run_nlopt(nlopt::LN_COBYLA, dim, o, tracker);
  } else if (name == "bobyqa") {
    run_nlopt(nlopt::LN_BOBYQA, dim, o, tracker);
  } else if (name == "cmaes") {
    run_cmaes(dim, o, tracker);
  } else {
    run_one_plus_one(dim, o, tracker);
  }
  OptimizeResult result = tracker.take();
  check(!result.history.empty(), "optimizer '{}' evaluated nothing", name);
  return result;
}

}  // namespace lorahub

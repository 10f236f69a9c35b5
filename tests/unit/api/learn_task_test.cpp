// The public learning task (lorahub/learn.h) and the BBH options (lorahub/bbh.h) on a tiny random
// Llama written at test time: the pool from modules and a list file, the seeded sample, the
// objective at given weights agreeing with the search's record, weights.json, the merged model,
// and options errors that name the field (never a CLI flag).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <random>
#include <set>

#include "lorahub/lorahub.h"
#include "tiny_models.h"

namespace lorahub::api_test {
namespace {

namespace fs = std::filesystem;

class ApiLearnTask : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("lorahub-learn-" + std::to_string(std::random_device()()));
    model_dir_ = make_tiny_llama(root_ / "model");
    for (unsigned i = 0; i < 4; ++i)
      modules_.push_back(make_module(root_ / fmt::format("module_{}", i), 20 + i));
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static api::LearnTaskOptions options(size_t sample, int steps = 6) {
    api::LearnTaskOptions o;
    o.model = model_dir_;
    o.modules = modules_;
    o.sample = sample;
    o.learn.steps = steps;
    o.learn.seed = 7;
    o.examples = {{"The sky is", "blue", 1}, {"Q: 2 + 2?\nA:", "4", 2}, {"hello", "world", 3}};
    return o;
  }

  static inline fs::path root_;
  static inline std::string model_dir_;
  static inline std::vector<std::string> modules_;
};

TEST_F(ApiLearnTask, PoolJoinsModulesAndTheListFile) {
  const fs::path list = root_ / "modules.txt";
  write_text(list, "# two of them, relative to the list\nmodule_2\n\nmodule_3\n");
  const std::vector<std::string> pool =
      api::module_pool({.modules = {modules_[0], modules_[1]}, .module_list = list.string()});
  ASSERT_EQ(pool.size(), 4u);
  EXPECT_EQ(pool[0], modules_[0]);
  EXPECT_EQ(fs::path(pool[3]).filename(), "module_3");
}

TEST_F(ApiLearnTask, SampleIsSeededAndTheObjectiveMatchesTheSearch) {
  api::LearnTask task = api::LearnTask::load(options(2));
  ASSERT_EQ(task.module_names().size(), 2u);
  EXPECT_EQ(task.examples(), 3u);
  for (const std::string& name : task.module_names())
    EXPECT_NE(std::find(modules_.begin(), modules_.end(), name), modules_.end()) << name;
  EXPECT_EQ(api::LearnTask::load(options(2)).module_names(), task.module_names());  // seeded
  EXPECT_EQ(api::LearnTask::load(options(0)).module_names(), modules_);             // 0 = all

  std::vector<int> seen;
  const api::LearnResult r = task.learn([&](const api::LearnStep& s) {
    seen.push_back(s.evaluation);
    return true;
  });
  ASSERT_EQ(r.history.size(), 6u);
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5, 6}));
  // The objective at each evaluated point is what the search recorded: loss + L1 penalty.
  for (const api::LearnStep& s : r.history) {
    const api::ObjectiveValue v = task.objective(s.weights);
    EXPECT_DOUBLE_EQ(v.objective, s.objective) << s.evaluation;
    EXPECT_DOUBLE_EQ(v.loss, s.loss) << s.evaluation;
    double mean_abs = 0;
    for (double w : s.weights) mean_abs += std::abs(w) / s.weights.size();
    EXPECT_NEAR(v.penalty, 0.05 * mean_abs, 1e-12);
  }
  double best = r.history[0].objective;
  for (const api::LearnStep& s : r.history) best = std::min(best, s.objective);
  EXPECT_DOUBLE_EQ(r.objective, best);
  // Different weights give a different objective (the checks above would hold for a constant).
  EXPECT_NE(task.objective({1.0, 0.0}).loss, task.objective({0.0, 1.0}).loss);

  const nlohmann::json record = nlohmann::json::parse(task.weights_json(r));
  EXPECT_EQ(record["modules"].get<std::vector<std::string>>(), task.module_names());
  EXPECT_EQ(record["weights"].get<std::vector<double>>(), r.weights);
  EXPECT_EQ(record["history"].size(), 6u);
  EXPECT_EQ(record["seed"], 7);
  EXPECT_EQ(record["optimizer"], "cobyla");
  EXPECT_DOUBLE_EQ(record["history"][5]["best"].get<double>(), best);
  EXPECT_EQ(record["history"][5]["seconds"].get<double>(), r.history[5].seconds);
  EXPECT_EQ(record["history"][5]["weights"].get<std::vector<double>>(), r.history[5].weights);
  EXPECT_GE(r.history[5].seconds, r.history[0].seconds);

  // Cancelling from the callback stops the search.
  EXPECT_THROW(task.learn([](const api::LearnStep&) { return false; }), api::Cancelled);
}

// A sample larger than the pool draws it all, and the caller is told (the CLI's warning).
TEST_F(ApiLearnTask, SampleBeyondThePoolIsReported) {
  std::vector<std::pair<size_t, size_t>> reported;
  auto load = [&](size_t sample) {
    api::LearnTaskOptions o = options(sample);
    o.on_sample_exceeds_pool = [&](size_t n, size_t pool) { reported.emplace_back(n, pool); };
    return api::LearnTask::load(o).module_names();
  };
  EXPECT_EQ(load(9), modules_);
  EXPECT_EQ(reported, (std::vector<std::pair<size_t, size_t>>{{9, 4}}));
  load(4);
  load(0);
  EXPECT_EQ(reported.size(), 1u);  // not for the whole pool, nor for 0 (= all)
}

TEST_F(ApiLearnTask, MergedModelScoresAsTheAdapterOnTheSide) {
  api::LearnTask task = api::LearnTask::load(options(0));
  const std::vector<double> w = {0.5, -0.25, 0.75, 0.1};
  const auto adapter = task.compose(w);
  const std::string written =
      api::save_merged_model(model_dir_, {}, *adapter, (root_ / "merged").string());
  EXPECT_EQ(fs::path(written).filename(), "model.safetensors");
  api::Session merged(api::Model::load((root_ / "merged").string()));
  api::Session side(api::Model::load(model_dir_), adapter);
  const std::vector<std::string> in = {"The sky is"}, out = {"blue"};
  const double a = merged.score(in, out)[0].loss_sum, b = side.score(in, out)[0].loss_sum;
  EXPECT_NEAR(a, b, 1e-3 * std::abs(b));
}

// Each bad option names its field as the options struct spells it.
template <typename F>
std::string option_at_fault(F f) {
  try {
    f();
  } catch (const api::OptionError& e) {
    EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();  // no flags
    return e.option();
  }
  return "(none)";
}

TEST_F(ApiLearnTask, MalformedOptionsNameTheField) {
  auto bad = [](auto change) {
    api::LearnTaskOptions o = options(0);
    change(o);
    return option_at_fault([&] { api::validate(o); });
  };
  EXPECT_EQ(bad([](auto&) {}), "(none)");
  EXPECT_EQ(bad([](auto& o) { o.learn.steps = 0; }), "steps");
  EXPECT_EQ(bad([](auto& o) { o.learn.optimizer = "sgd"; }), "optimizer");
  EXPECT_EQ(bad([](auto& o) { o.learn.loss = "mse"; }), "loss");
  EXPECT_EQ(bad([](auto& o) { o.learn.batch_size = -1; }), "batch_size");
  EXPECT_EQ(bad([](auto& o) { o.sampler = "dice"; }), "sampler");
  EXPECT_EQ(bad([](auto& o) { o.select = "best:2"; }), "select");
  EXPECT_EQ(bad([](auto& o) { o.learn.compose.method = "median"; }), "method");
  EXPECT_EQ(option_at_fault([] { api::module_pool({}); }), "modules");
  EXPECT_EQ(option_at_fault([] {
              api::module_pool({.hub = "http://127.0.0.1:9", .hub_filter = {"colour=red"}});
            }),
            "hub_filter");
}

TEST(ApiBbhMalformed, OptionsNameTheField) {
  auto bad = [](auto change) {
    api::BbhOptions o;
    change(o);
    return option_at_fault([&] { api::validate(o); });
  };
  EXPECT_EQ(bad([](auto&) {}), "(none)");
  EXPECT_EQ(bad([](auto& o) { o.steps = 0; }), "steps");
  EXPECT_EQ(bad([](auto& o) { o.metric = "acc"; }), "metric");
  EXPECT_EQ(bad([](auto& o) { o.loss = "mse"; }), "loss");
  EXPECT_EQ(bad([](auto& o) { o.sampler = "dice"; }), "sampler");
  EXPECT_EQ(bad([](auto& o) { o.select = "retrieval:0"; }), "select");
  EXPECT_EQ(bad([](auto& o) { o.batch_size = 0; }), "batch_size");
  EXPECT_EQ(bad([](auto& o) { o.methods = {"zero-shot", "magic"}; }), "methods");
  EXPECT_EQ(bad([](auto& o) { o.seeds.clear(); }), "seeds");
  EXPECT_EQ(api::parse_bbh_methods("uniform,zero-shot"),
            (std::vector<std::string>{"zero-shot", "uniform"}));  // the table's order
  EXPECT_EQ(api::parse_seed_list("1-3,7"), (std::vector<uint64_t>{1, 2, 3, 7}));
  EXPECT_THROW(api::parse_seed_list("3-1"), Error);
}

TEST(ApiSelection, ParsesTheRuleAndCount) {
  using Rule = api::ModuleSelection::Rule;
  EXPECT_EQ(api::parse_module_selection("").rule, Rule::kAll);
  EXPECT_EQ(api::parse_module_selection("loss-rank:3").rule, Rule::kLossRank);
  EXPECT_EQ(api::parse_module_selection("loss-rank:3").k, 3u);
  EXPECT_EQ(api::parse_module_selection("retrieval:2").rule, Rule::kRetrieval);
  EXPECT_EQ(api::parse_module_selection("retrieval:2").k, 2u);
  EXPECT_EQ(option_at_fault([] { api::parse_module_selection("retrievalx:2"); }), "select");
  EXPECT_EQ(option_at_fault([] { api::parse_module_selection("retrieval:0"); }), "select");
}

}  // namespace
}  // namespace lorahub::api_test

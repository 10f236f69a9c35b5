// The objective's arithmetic on a fake model whose losses we choose: the reference mode
// (batch token-mean CE summed over batches / #examples) vs the per-example mean, the L1
// penalty, and that the composed adapter reaches the model and is detached afterwards.
#include <gtest/gtest.h>
#include <algorithm>

#include "adapt/learner.h"
#include "adapt/objective.h"
#include "core/error.h"

namespace lorahub {
namespace {

// Example i has label_ids.size() tokens and CE sum (i+1) * tokens * (1 + |Σ lora A|), so the
// losses depend on the composed weights.
class FakeModel : public Model {
 public:
  FakeModel() {
    q_.name = "enc.q";
    q_.in = q_.out = 1;
    index_lora_targets({&q_});
  }
  std::string architecture() const override { return "fake"; }
  bool is_encoder_decoder() const override { return true; }
  const Tokenizer& tokenizer() const override { throw Error("no tokenizer"); }
  Example make_example(const std::string&, const std::string&) const override { return {}; }
  std::vector<ExampleLoss> score(const std::vector<Example>& batch,
                                 const SequenceLora& lora) const override {
    ++score_calls;
    std::vector<ExampleLoss> out;
    for (size_t b = 0; b < batch.size(); ++b) {
      const BoundLora* l = lora.empty() ? nullptr : lora.size() == 1 ? lora[0] : lora.at(b);
      const double shift = l ? std::abs(l->map->at("enc.q")[0].A[0] - best_a) : 0.0;
      const auto n = static_cast<int64_t>(batch[b].label_ids.size());
      out.push_back({batch[b].input_ids[0] * static_cast<double>(n) * (1 + shift), n});
    }
    return out;
  }
  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>&, int,
                                       const SequenceLora&) const override {
    return nullptr;
  }
  void decode_step(DecodeState&, const std::vector<int32_t>&) const override {}
  int64_t vocab_size() const override { return 1; }
  std::vector<int32_t> end_of_sequence_ids() const override { return {}; }
  void merge_lora(const LoraMap&) override {}
  std::vector<std::pair<std::string, Tensor>> state_dict() const override { return {}; }
  mutable int score_calls = 0;
  float best_a = 0.0f;  // the composed A with the lowest loss

 protected:
  std::vector<const Linear*> lora_targets() const override { return {&q_}; }

 private:
  Linear q_;
};

LoraModule module_with_a(float a0, const std::string& path) {
  LoraModule m;
  m.path = path;
  m.config.r = 1;
  for (bool is_a : {true, false}) {
    LoraTensor t;
    t.layer = "enc.q";
    t.is_a = is_a;
    t.key = std::string("base_model.model.enc.q.lora_") + (is_a ? "A" : "B") + ".weight";
    t.shape = {1, 1};
    t.values = {is_a ? a0 : 1.0f};
    m.tensors.push_back(t);
  }
  return m;
}

// Example i: "CE per token" i+1 (input_ids[0]), with 1, 3, 2 label tokens.
std::vector<Example> examples() {
  return {{{1}, {5}}, {{2}, {5, 6, 7}}, {{3}, {5, 6}}};
}

TEST(Objective, ReferenceModeIsBatchTokenMeanOverExampleCount) {
  FakeModel model;
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a"), module_with_a(2, "b")});
  Objective f(model, set, examples());
  // One batch: Σ CE / Σ tokens = (1·1 + 2·3 + 3·2) / 6 = 13/6, divided by 3 examples.
  EXPECT_NEAR(f.loss({0, 0}), 13.0 / 6 / 3, 1e-12);
  // w = (0.5, 0.25): composed A = 0.5·1 + 0.25·2 = 1 -> losses doubled; penalty 0.05·0.375.
  EXPECT_NEAR(f({0.5, 0.25}), 2 * 13.0 / 6 / 3 + 0.05 * 0.375, 1e-12);
}

// A generation of points is scored in one forward per batch, each copy of an example with its
// point's adapter, and gives what scoring each point alone gives.
TEST(Objective, EvaluateScoresAllPointsInSharedForwards) {
  FakeModel model;
  model.best_a = 0.5f;
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a"), module_with_a(2, "b")});
  Objective f(model, set, examples());
  const std::vector<Point> points = {{0.5, 0.25}, {0, 0}, {1, -1}, {0.1, 0.2}};
  std::vector<double> alone;
  for (const Point& w : points) alone.push_back(f(w));
  model.score_calls = 0;
  const std::vector<double> together = f.evaluate(points);
  EXPECT_EQ(model.score_calls, 1);
  ASSERT_EQ(together.size(), points.size());
  for (size_t p = 0; p < points.size(); ++p) EXPECT_DOUBLE_EQ(together[p], alone[p]) << p;
  EXPECT_NE(together[0], together[1]);
}

TEST(Objective, ReferenceModeSumsBatchLosses) {
  FakeModel model;
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a")});
  ObjectiveOptions o;
  o.batch_size = 2;
  Objective f(model, set, examples(), o);
  // Batches {0,1}: 7/4 and {2}: 3 -> (7/4 + 3) / 3.
  EXPECT_NEAR(f.loss({0}), (7.0 / 4 + 3) / 3, 1e-12);
  EXPECT_EQ(model.score_calls, 2);
}

TEST(Objective, ExampleMeanModeWeighsExamplesEqually) {
  FakeModel model;
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a")});
  ObjectiveOptions o;
  o.mode = LossMode::kExampleMean;
  Objective f(model, set, examples(), o);
  EXPECT_NEAR(f.loss({0}), (1.0 + 2 + 3) / 3, 1e-12);
}

TEST(Objective, LearnFindsTheWeightsThatMinimize) {
  // The loss grows with |composed A - 0.6| and composed A = w0 - w1, so the optimum is away from
  // the start w = 0 (which COBYLA evaluates first): any w0 - w1 = 0.6 with w0 >= 0 >= w1, where
  // the L1 penalty is 0.05 · 0.6 / 2.
  FakeModel model;
  model.best_a = 0.6f;
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a"), module_with_a(-1, "b")});
  Objective f(model, set, examples());
  LearnOptions o;
  o.steps = 30;
  o.progress = false;
  const LearnResult r = learn(f, o);
  EXPECT_EQ(r.history.size(), 30u);
  // When each evaluation ended (time-to-quality in bench/run.py): one per evaluation, in order,
  // within the search's time.
  ASSERT_EQ(r.elapsed.size(), r.history.size());
  EXPECT_TRUE(std::is_sorted(r.elapsed.begin(), r.elapsed.end()));
  EXPECT_GE(r.elapsed.front(), 0.0);
  EXPECT_LE(r.elapsed.back(), r.seconds);
  EXPECT_NEAR(r.objective, f(r.weights), 1e-12);
  const double optimum = 13.0 / 6 / 3 + 0.05 * 0.6 / 2;
  EXPECT_LT(optimum, f({0, 0}) - 0.4);
  EXPECT_NEAR(r.objective, optimum, 0.01);
  EXPECT_NEAR(r.weights[0] - r.weights[1], 0.6, 0.02);
}

TEST(ObjectiveMalformed, RejectsBadInput) {
  FakeModel model;
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a")});
  EXPECT_THROW(Objective(model, set, {}), Error);
  EXPECT_THROW(Objective(model, set, {{{1}, {}}}), Error);  // no output tokens
  Objective f(model, set, examples());
  EXPECT_THROW(f.loss({0, 0}), Error);
  EXPECT_THROW(f.loss({std::nan("")}), Error);
  LearnOptions o;
  o.steps = 0;
  EXPECT_THROW(learn(f, o), Error);
  EXPECT_THROW(parse_loss_mode("median"), Error);
}

TEST(Objective, TruncatesLikeTheTokenizer) {
  std::vector<int32_t> ids{5, 6, 7, 8, 1};
  truncate_keep_last(ids, 3);
  EXPECT_EQ(ids, (std::vector<int32_t>{5, 6, 1}));
  truncate_keep_last(ids, 10);
  EXPECT_EQ(ids.size(), 3u);
}

}  // namespace
}  // namespace lorahub

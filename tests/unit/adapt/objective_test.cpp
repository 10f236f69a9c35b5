// The objective's arithmetic on a fake model whose losses we choose: the reference mode
// (batch token-mean CE summed over batches / #examples) vs the per-example mean, the L1
// penalty, and that the composed adapter reaches the model and is detached afterwards.
#include <gtest/gtest.h>

#include "adapt/learner.h"
#include "adapt/objective.h"
#include "core/error.h"

namespace lorahub {
namespace {

// Example i has label_ids.size() tokens and CE sum (i+1) * tokens * (1 + |Σ lora A|), so the
// losses depend on the composed weights.
class FakeModel : public Model {
 public:
  std::string architecture() const override { return "fake"; }
  bool is_encoder_decoder() const override { return true; }
  const Tokenizer& tokenizer() const override { throw Error("no tokenizer"); }
  Example make_example(const std::string&, const std::string&) const override { return {}; }
  std::vector<ExampleLoss> score(const std::vector<Example>& batch) override {
    ++score_calls;
    double shift = 0;
    if (lora_) shift = std::abs(lora_->at("enc.q")[0].A[0]);
    std::vector<ExampleLoss> out;
    for (const Example& e : batch) {
      const auto n = static_cast<int64_t>(e.label_ids.size());
      out.push_back({e.input_ids[0] * static_cast<double>(n) * (1 + shift), n});
    }
    return out;
  }
  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>&, int) override {
    return nullptr;
  }
  void decode_step(DecodeState&, const std::vector<int32_t>&) override {}
  int64_t vocab_size() const override { return 1; }
  std::vector<int32_t> end_of_sequence_ids() const override { return {}; }
  void set_lora(const LoraMap* lora) override { lora_ = lora; }
  void merge_lora(const LoraMap&) override {}
  std::vector<LinearInfo> linear_layers() const override { return {}; }
  std::vector<std::pair<std::string, Tensor>> state_dict() const override { return {}; }
  const LoraMap* lora_ = nullptr;
  int score_calls = 0;
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
  EXPECT_EQ(model.lora_, nullptr);  // detached after scoring
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
  FakeModel model;  // loss grows with |composed A|, the penalty with |w|: the optimum is w = 0
  const ModuleSet set = ModuleSet::from_modules({module_with_a(1, "a"), module_with_a(-1, "b")});
  Objective f(model, set, examples());
  LearnOptions o;
  o.steps = 30;
  o.progress = false;
  const LearnResult r = learn(f, o);
  EXPECT_EQ(r.history.size(), 30u);
  EXPECT_NEAR(r.objective, f(r.weights), 1e-12);
  EXPECT_LE(r.objective, f({0, 0}) + 1e-12);
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

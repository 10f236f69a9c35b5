// The public API on a tiny random Llama written at test time: Session score/generate equal the
// engine's own functions (what the CLI calls), sessions with different adapters on one model in
// two threads equal sequential runs, composition/learning round trips, bad input names the
// problem, and callbacks cancel.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "api/internal.h"
#include "core/version.h"
#include "eval/generate.h"
#include "lora/combine.h"
#include "lora/compose.h"
#include "lorahub/lorahub.h"
#include "support/scripted_model.h"
#include "tiny_models.h"

namespace lorahub::api_test {
namespace {

namespace fs = std::filesystem;

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("lorahub-api-" + std::to_string(std::random_device()()));
    model_dir_ = make_tiny_llama(root_ / "model");
    for (unsigned i = 0; i < 3; ++i)
      modules_.push_back(make_module(root_ / fmt::format("module_{}", i), 10 + i));
    model_ = api::Model::load(model_dir_);
  }
  static void TearDownTestSuite() {
    model_.reset();
    fs::remove_all(root_);
  }

  static inline fs::path root_;
  static inline std::string model_dir_;
  static inline std::vector<std::string> modules_;
  static inline std::shared_ptr<const api::Model> model_;
};

const std::vector<std::string> kInputs = {"The sky is", "Q: 2 + 2?\nA:", "hello"};
const std::vector<std::string> kOutputs = {"blue", "4", "world, again"};

// What the CLI's scoring runs: the engine's score with the module as side path.
std::vector<ExampleLoss> engine_scores(const std::string& model_dir, const LoraMap& lora) {
  auto model = load_model(model_dir);
  const auto bound = model->bind_lora(lora);
  std::vector<Example> examples;
  for (size_t i = 0; i < kInputs.size(); ++i)
    examples.push_back(model->make_example(kInputs[i], kOutputs[i]));
  return model->score(examples, {bound.get()});
}

TEST_F(ApiTest, ScoreEqualsTheEngine) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  const std::vector<double> w = {0.7, -0.3, 0.2};
  api::Session session(model_, set.compose(w));
  const auto scores = session.score(kInputs, kOutputs);
  const LoraMap lora = compose(lorahub::ModuleSet::load(modules_), w);
  const auto expected = engine_scores(model_dir_, lora);
  ASSERT_EQ(scores.size(), expected.size());
  for (size_t i = 0; i < scores.size(); ++i) {
    EXPECT_DOUBLE_EQ(scores[i].loss_sum, expected[i].ce_sum) << i;
    EXPECT_EQ(scores[i].tokens, expected[i].tokens);
  }
  // The adapter changes the result (the check above would otherwise hold for any adapter).
  api::Session base(model_);
  EXPECT_NE(base.score(kInputs, kOutputs)[0].loss_sum, scores[0].loss_sum);
  // Batching does not change the losses beyond rounding.
  const auto batched = session.score(kInputs, kOutputs, 1);
  for (size_t i = 0; i < scores.size(); ++i)
    EXPECT_NEAR(batched[i].loss_sum, scores[i].loss_sum, 1e-4 * std::abs(scores[i].loss_sum));
}

TEST_F(ApiTest, GenerateEqualsTheEngineAndStreams) {
  const auto adapter = api::Adapter::load(modules_[1]);
  api::GenerationOptions options;
  options.max_new_tokens = 12;
  std::vector<std::string> streamed(kInputs.size());
  size_t done_events = 0;
  options.on_text = [&](const api::TextEvent& e) {
    streamed.at(e.index) += e.text;
    done_events += e.done;
    return true;
  };
  api::Session session(model_, adapter);
  const auto out = session.generate(kInputs, options);

  auto model = load_model(model_dir_);
  const LoraMap lora = to_lora_map(load_lora_module(modules_[1]));
  const auto bound = model->bind_lora(lora);
  GenerateOptions engine_options;
  engine_options.lora = bound.get();
  engine_options.decode.max_new_tokens = 12;
  const auto expected = generate_texts(*model, kInputs, engine_options);
  ASSERT_EQ(out.size(), expected.size());
  EXPECT_EQ(done_events, kInputs.size());
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].text, expected[i].text);
    EXPECT_EQ(out[i].ids, expected[i].ids);
    EXPECT_EQ(streamed[i], out[i].text);
    EXPECT_EQ(out[i].prompt_tokens, model_->encode(kInputs[i]).size());
  }
  EXPECT_EQ(out[0].finish_reason, expected[0].finish == FinishReason::kLength ? "length" : "stop");
}

TEST_F(ApiTest, TwoThreadsWithTwoAdaptersEqualSequentialRuns) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  const auto a = set.compose({1.0, 0.0, 0.5});
  const auto b = set.compose({-0.5, 1.0, 0.0});
  api::GenerationOptions options;
  options.max_new_tokens = 8;
  auto run = [&](const std::shared_ptr<const api::Adapter>& adapter) {
    api::Session s(model_, adapter);
    return std::make_pair(s.score(kInputs, kOutputs), s.generate(kInputs, options));
  };
  const auto alone_a = run(a), alone_b = run(b);
  for (int round = 0; round < 3; ++round) {
    decltype(run(a)) got_a, got_b;
    std::thread ta([&] { got_a = run(a); });
    std::thread tb([&] { got_b = run(b); });
    ta.join();
    tb.join();
    for (size_t i = 0; i < kInputs.size(); ++i) {
      EXPECT_EQ(got_a.first[i].loss_sum, alone_a.first[i].loss_sum);
      EXPECT_EQ(got_b.first[i].loss_sum, alone_b.first[i].loss_sum);
      EXPECT_EQ(got_a.second[i].text, alone_a.second[i].text);
      EXPECT_EQ(got_b.second[i].text, alone_b.second[i].text);
    }
  }
  EXPECT_NE(alone_a.first[0].loss_sum, alone_b.first[0].loss_sum);
}

TEST_F(ApiTest, ComposedAdapterSavesAndLoads) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  ASSERT_EQ(set.size(), 3u);
  EXPECT_EQ(set.names(), modules_);
  const auto composed = set.compose({0.3, 0.3, 0.4});
  EXPECT_EQ(composed->name(), "composition");
  EXPECT_EQ(composed->rank(), 4);
  EXPECT_EQ(composed->base_model(), "tiny-llama");
  EXPECT_EQ(composed->target_layers().size(), 2u * kLayers);
  const std::string dir = (root_ / "saved").string();
  composed->save(dir);
  api::Session a(model_, composed), b(model_, api::Adapter::load(dir));
  EXPECT_EQ(a.score(kInputs, kOutputs)[2].loss_sum, b.score(kInputs, kOutputs)[2].loss_sum);
  // PEFT's cat: the rank adds up.
  api::ComposeOptions cat;
  cat.method = "cat";
  EXPECT_EQ(set.compose({1, 1, 1}, cat)->rank(), 12);
}

TEST_F(ApiTest, MergedCompositionRoutedAdapterAndLabelLogits) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  const auto composed = set.compose({0.5, -0.2, 0.4});
  EXPECT_TRUE(composed->made_for("/models/tiny-llama"));
  EXPECT_FALSE(composed->made_for("/models/other-model"));
  // Merged into the weights at load = the same adapter as a side path (up to rounding).
  api::Session merged(api::Model::load(model_dir_, {.merge_adapters = {composed}}));
  api::Session side(model_, composed);
  const auto a = merged.score(kInputs, kOutputs), b = side.score(kInputs, kOutputs);
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i].loss_sum, b[i].loss_sum, 1e-4 * std::abs(b[i].loss_sum));
  // One logits row per output token, over the vocabulary.
  const auto logits = side.label_logits(kInputs, kOutputs, 2);
  ASSERT_EQ(logits.size(), kInputs.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    EXPECT_EQ(logits[i].rows, b[i].tokens);
    EXPECT_EQ(logits[i].values.size(), static_cast<size_t>(logits[i].rows * logits[i].cols));
  }
  // Arrow routing runs as a side path only, and differs from the base model.
  const auto routed = set.route({.top_k = 2});
  api::Session arrow(model_, routed), base(model_);
  EXPECT_NE(arrow.score(kInputs, kOutputs)[0].loss_sum, base.score(kInputs, kOutputs)[0].loss_sum);
  EXPECT_THROW(routed->save((root_ / "routed").string()), Error);
  EXPECT_THROW(api::Model::load(model_dir_, {.merge_adapters = {routed}}), Error);
}

TEST(ApiMalformed, ComposeOptionsNameTheFieldAtFault) {
  auto field_of = [](api::ComposeOptions o) -> std::string {
    try {
      api::validate(o);
    } catch (const api::OptionError& e) {
      return e.option();
    }
    return "";
  };
  EXPECT_EQ(field_of({}), "");
  EXPECT_EQ(field_of({.method = "average"}), "method");
  EXPECT_EQ(field_of({.method = "ties"}), "method");  // needs a density
  // A value out of range is its own field's fault, with any method.
  EXPECT_EQ(field_of({.method = "ties", .density = 1.5}), "density");
  EXPECT_EQ(field_of({.method = "linear", .density = -0.5}), "density");
  EXPECT_EQ(field_of({.method = "svd", .svd_rank = -1}), "svd_rank");
  EXPECT_EQ(field_of({.method = "svd", .svd_clamp = 2.0}), "svd_clamp");
  EXPECT_EQ(field_of({.method = "ties", .density = 0.5, .majority_sign = "most"}), "majority_sign");
  EXPECT_EQ(field_of({.method = "dare_linear", .density = 0.5, .drop_masks_file = "/nonexistent"}),
            "drop_masks_file");
}

TEST_F(ApiTest, LearnFindsWeightsAndReportsEverySteps) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  // Targets that module 2 alone says: its weight should dominate.
  api::GenerationOptions gen;
  gen.max_new_tokens = 4;
  api::Session planted(model_, set.module(2));
  std::vector<std::string> outputs;
  for (const auto& g : planted.generate(kInputs, gen)) outputs.push_back(g.text);
  api::LearnOptions options;
  options.steps = 25;
  int steps = 0;
  options.on_step = [&](const api::LearnStep& s) {
    EXPECT_EQ(s.evaluation, ++steps);
    EXPECT_NEAR(
        s.objective - s.loss,
        0.05 * (std::abs(s.weights[0]) + std::abs(s.weights[1]) + std::abs(s.weights[2])) / 3,
        1e-12);
    return true;
  };
  const api::LearnResult r = api::learn(model_, set, kInputs, outputs, options);
  EXPECT_EQ(steps, 25);
  EXPECT_EQ(r.history.size(), 25u);
  ASSERT_EQ(r.weights.size(), 3u);
  double best = r.history[0].objective;
  for (const auto& s : r.history) best = std::min(best, s.objective);
  EXPECT_EQ(r.objective, best);
  // The learned adapter is the composition of the weights.
  api::Session learned(model_, r.adapter), again(model_, set.compose(r.weights));
  EXPECT_EQ(learned.score(kInputs, outputs)[0].loss_sum, again.score(kInputs, outputs)[0].loss_sum);

  // A regularizer replaces the L1 term.
  options.steps = 3;
  options.on_step = [](const api::LearnStep& s) {
    EXPECT_NEAR(s.objective - s.loss, 1.0 + s.weights[0], 1e-12);
    return true;
  };
  options.regularizer = [](const std::vector<double>& w) { return 1.0 + w[0]; };
  api::learn(model_, set, kInputs, outputs, options);
}

TEST_F(ApiTest, CallbacksCancel) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  api::LearnOptions learn;
  learn.steps = 10;
  int calls = 0;
  learn.on_step = [&](const api::LearnStep&) { return ++calls < 2; };
  EXPECT_THROW(api::learn(model_, set, kInputs, kOutputs, learn), api::Cancelled);
  EXPECT_EQ(calls, 2);

  api::Session session(model_);
  api::GenerationOptions gen;
  gen.max_new_tokens = 10;
  gen.batch_size = 1;
  gen.on_progress = [](std::string_view, size_t done, size_t) { return done < 2; };
  EXPECT_THROW(session.generate(kInputs, gen), api::Cancelled);
  // After a cancelled call the model works as before (no adapter left behind).
  gen.on_progress = nullptr;
  const auto full = session.generate(kInputs, gen);
  gen.on_text = [](const api::TextEvent& e) { return e.index != 1; };  // cancel prompt 1 at once
  const auto cut = session.generate(kInputs, gen);
  EXPECT_EQ(cut[0].text, full[0].text);
  EXPECT_EQ(cut[1].finish_reason, "cancelled");
  EXPECT_LE(cut[1].ids.size(), 1u);
  EXPECT_EQ(cut[2].text, full[2].text);
}

// A session on a model whose every step says "a" (token 1), up to 200 tokens, counting its
// decode steps; options of 100 new tokens, 2 prompts a batch.
struct ScriptedGeneration {
  ScriptedModel* scripted =
      new ScriptedModel(std::vector<std::string>{"", "a"},
                        std::vector<std::vector<int32_t>>{{}, std::vector<int32_t>(200, 1)});
  api::Session session{model_of(scripted)};
  api::GenerationOptions options{.max_new_tokens = 100, .batch_size = 2};

  static std::shared_ptr<const api::Model> model_of(ScriptedModel* scripted) {
    auto impl = std::make_shared<api::Model::Impl>();
    impl->path = "scripted";
    impl->engine.reset(scripted);  // owned by the model from here on
    return std::make_shared<const api::Model>(impl);
  }
};

// A generation cancelled from its on_text callback stops decoding (the scripted model counts its
// steps): the cancelled row decodes no further, and a batch whose rows are all cancelled ends.
TEST(ApiCancel, CancelledGenerationStopsDecoding) {
  ScriptedGeneration g;
  const ScriptedModel& scripted = *g.scripted;
  api::Session& session = g.session;
  api::GenerationOptions& gen = g.options;
  std::vector<int> events(2, 0);
  gen.on_text = [&](const api::TextEvent& e) {
    ++events[e.index];
    return e.done || e.index == 1 || events[0] < 5;  // prompt 0 cancels at its fifth token
  };
  std::vector<api::Generation> out = session.generate({"x", "y"}, gen);
  EXPECT_EQ(out[0].finish_reason, "cancelled");
  EXPECT_EQ(out[0].text, "aaaaa");  // what it had streamed, the cancelling event's token too
  EXPECT_EQ(events[0], 6);          // five tokens, then the one "cancelled" event
  EXPECT_EQ(out[1].text, std::string(100, 'a'));
  EXPECT_EQ(scripted.steps, 99);

  scripted.steps = 0;
  gen.on_text = [](const api::TextEvent& e) { return e.done; };  // both cancel at once
  out = session.generate({"x", "y"}, gen);
  EXPECT_EQ(out[1].finish_reason, "cancelled");
  EXPECT_EQ(scripted.steps, 0);  // the batch ended after prefill, not after 99 steps
}

// Returning false cancels one sequence; to stop the whole call, on_text throws: generate
// rethrows at once, the other rows of the batch and the later batches are never decoded.
TEST(ApiCancel, ThrowingFromOnTextStopsTheWholeCall) {
  ScriptedGeneration g;
  const ScriptedModel& scripted = *g.scripted;
  api::Session& session = g.session;
  api::GenerationOptions& gen = g.options;
  std::vector<int> events(4, 0);
  gen.on_text = [&](const api::TextEvent& e) {
    if (++events[e.index] == 3 && e.index == 0) throw api::Cancelled();
    return true;
  };
  EXPECT_THROW(session.generate({"w", "x", "y", "z"}, gen), api::Cancelled);
  EXPECT_EQ(scripted.steps, 2);                       // the third token's step was the last
  EXPECT_EQ(events, (std::vector<int>{3, 2, 0, 0}));  // row 1 saw two; batch 2 never started
}

TEST_F(ApiTest, ChatPromptAndTokenizer) {
  EXPECT_EQ(model_->architecture(), "llama");
  EXPECT_FALSE(model_->is_encoder_decoder());
  EXPECT_TRUE(model_->has_chat_template());
  EXPECT_EQ(model_->chat_prompt({{"user", "hi"}}), "<|user|>hi\n<|assistant|>");
  EXPECT_EQ(model_->decode(model_->encode("héllo")), "héllo");
  EXPECT_EQ(api::version(), kEngineVersion);
  // The tokenizer alone (no weights) is the model's.
  const auto tokenizer = api::Tokenizer::load(model_dir_);
  EXPECT_EQ(tokenizer->encode("héllo"), model_->encode("héllo"));
  EXPECT_EQ(tokenizer->decode(model_->encode("héllo")), "héllo");
  EXPECT_EQ(tokenizer->render_chat(R"([{"role": "user", "content": "hi"}])"),
            model_->chat_prompt({{"user", "hi"}}));
  EXPECT_THROW(tokenizer->render_chat("{}"), Error);  // one version: the one results are keyed by
  const auto targets = model_->lora_targets();
  EXPECT_NE(std::find(targets.begin(), targets.end(), "model.layers.0.self_attn.q_proj"),
            targets.end());
}

TEST_F(ApiTest, BatcherEqualsSessionsPerAdapter) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  const std::vector<std::shared_ptr<const api::Adapter>> adapters = {set.module(0), set.module(1),
                                                                     nullptr};
  api::GenerationOptions options;
  options.max_new_tokens = 10;
  options.stop = {"\n"};
  std::vector<std::string> expected;
  for (size_t i = 0; i < kInputs.size(); ++i)
    expected.push_back(api::Session(model_, adapters[i]).generate({kInputs[i]}, options)[0].text);

  EXPECT_FALSE(expected[0].empty() && expected[1].empty() && expected[2].empty());
  api::Batcher batcher(model_);
  std::map<uint64_t, std::string> text, reason;
  options.on_text = [&](const api::TextEvent& e) {
    text[e.index] += e.text;
    if (e.done) reason[e.index] = e.finish_reason;
    return true;
  };
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < kInputs.size(); ++i)
    ids.push_back(batcher.add(kInputs[i], adapters[i], options));
  const uint64_t cancelled = batcher.add(kInputs[0], adapters[0], options);
  batcher.cancel(cancelled);
  EXPECT_EQ(batcher.active(), 4u);
  EXPECT_EQ(batcher.step(), 3u);  // all at once, each with its adapter; the cancelled one left
  // A sequence added while others decode joins at the next step.
  const uint64_t late = batcher.add(kInputs[2], adapters[2], options);
  for (int guard = 0; batcher.active() > 0 && guard < 1000; ++guard) batcher.step();
  EXPECT_EQ(text[late], expected[2]);
  EXPECT_EQ(batcher.active(), 0u);
  for (size_t i = 0; i < kInputs.size(); ++i) {
    EXPECT_EQ(text[ids[i]], expected[i]) << i;
    EXPECT_FALSE(reason[ids[i]].empty());
  }
  EXPECT_EQ(reason[cancelled], "cancelled");
  EXPECT_EQ(batcher.step(), 0u);
}

// Sequences that join at one step are prefilled in one forward per max_new_tokens; a sequence
// that ends (or is cancelled) early leaves its batch's row to a filler token while the others of
// that batch go on. Each still says what it says alone.
TEST_F(ApiTest, BatcherPrefillsJoinersTogetherAndTheyEndApart) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  const std::vector<std::shared_ptr<const api::Adapter>> adapters = {
      set.module(2), set.compose({0.5, -0.4, 0.9}), nullptr, set.module(0)};
  const std::vector<int> budgets = {12, 3, 12, 7};
  auto options_for = [&](size_t i) {
    api::GenerationOptions o;
    o.max_new_tokens = budgets[i];
    return o;
  };
  std::vector<std::string> expected;
  for (size_t i = 0; i < adapters.size(); ++i)
    expected.push_back(api::Session(model_, adapters[i])
                           .generate({kInputs[i % kInputs.size()]}, options_for(i))[0]
                           .text);
  api::Batcher batcher(model_);
  std::map<uint64_t, std::string> text, reason;
  std::vector<uint64_t> ids;
  for (size_t i = 0; i < adapters.size(); ++i) {
    api::GenerationOptions o = options_for(i);
    o.on_text = [&](const api::TextEvent& e) {
      text[e.index] += e.text;
      if (e.done) reason[e.index] = e.finish_reason;
      return true;
    };
    ids.push_back(batcher.add(kInputs[i % kInputs.size()], adapters[i], o));
  }
  // The third (of the first budget-12 batch) is cancelled after two steps; the first goes on.
  batcher.step();
  batcher.step();
  batcher.cancel(ids[2]);
  for (int guard = 0; batcher.active() > 0 && guard < 1000; ++guard) batcher.step();
  for (size_t i : {0, 1, 3}) {
    EXPECT_EQ(text[ids[i]], expected[i]) << i;
    EXPECT_EQ(reason[ids[i]], "length") << i;  // the tiny model's text runs to its budget
  }
  EXPECT_EQ(reason[ids[2]], "cancelled");
  EXPECT_EQ(expected[2].rfind(text[ids[2]], 0), 0u);  // what it said before, it says alone
}

// A decode step's negative token leaves that (finished) row out: the other rows get the logits
// of a step that feeds every row, the skipped row's logits stay as they were, and the skipped
// row's cache slot is not written (its sequence has ended).
TEST_F(ApiTest, DecodeStepLeavesFinishedRowsOut) {
  auto model = load_model(model_dir_);
  const std::vector<std::vector<int32_t>> prompts = {model->tokenizer().encode("The sky is"),
                                                     model->tokenizer().encode("hello"),
                                                     model->tokenizer().encode("Q: 2 + 2?")};
  const std::unique_ptr<DecodeState> all = model->prefill(prompts, 4);
  const std::unique_ptr<DecodeState> skipped = all->clone();
  const std::vector<float> before = all->logits;
  model->decode_step(*all, {65, 66, 67});
  model->decode_step(*skipped, {65, -1, 67});
  const auto v = static_cast<size_t>(model->vocab_size());
  float largest_change = 0;
  for (size_t b : {0u, 2u})
    for (size_t i = 0; i < v; ++i) {
      EXPECT_NEAR(skipped->logits[b * v + i], all->logits[b * v + i], 1e-5) << b << " " << i;
      largest_change =
          std::max(largest_change, std::abs(all->logits[b * v + i] - before[b * v + i]));
    }
  EXPECT_GT(largest_change, 1e-3);  // the step did move the running rows
  for (size_t i = 0; i < v; ++i) EXPECT_EQ(skipped->logits[v + i], before[v + i]) << i;
  // A step whose rows have all finished computes nothing and fails nothing.
  model->decode_step(*skipped, {-1, -1, -1});
  for (size_t i = 0; i < v; ++i) EXPECT_NEAR(skipped->logits[i], all->logits[i], 1e-5);
}

// An adapter whose sequences have ended is let go at once, even while others still decode.
TEST_F(ApiTest, BatcherLetsGoOfAdaptersNoSequenceUses) {
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  api::Batcher batcher(model_);
  api::GenerationOptions o;
  o.max_new_tokens = 12;
  batcher.add(kInputs[0], set.module(0), o);
  auto composed = set.compose({0.3, 0.3, 0.3});
  const std::weak_ptr<const api::Adapter> watched = composed;
  o.max_new_tokens = 2;
  batcher.add(kInputs[1], std::move(composed), o);
  for (int i = 0; i < 4; ++i) batcher.step();
  EXPECT_EQ(batcher.active(), 1u);  // the first still decodes
  EXPECT_TRUE(watched.expired());
}

TEST_F(ApiTest, MalformedInputsNameTheProblem) {
  auto expect_error = [](auto&& f, const std::string& fragment) {
    try {
      f();
      ADD_FAILURE() << "expected lorahub::Error with '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error([&] { api::Model::load((root_ / "nope").string()); }, "nope");
  expect_error([&] { api::Adapter::load((root_ / "missing").string()); }, "missing");
  api::Session session(model_);
  expect_error([&] { session.score({"a", "b"}, {"x"}); }, "2 inputs but 1 outputs");
  const api::ModuleSet set = api::ModuleSet::load(modules_);
  expect_error([&] { set.compose({1.0, 2.0}); }, "2 weights for 3 modules");
  expect_error([&] { set.compose({1.0, NAN, 0.0}); }, "weight");
  expect_error([&] { api::ModuleSet::load({}); }, "no modules");
  // A module of another rank cannot join the set; a module on layers the model lacks, or of
  // other shapes, cannot be used with it.
  const std::string odd_rank = make_module(root_ / "rank8", 5, {"q_proj", "v_proj"}, 8);
  expect_error([&] { api::ModuleSet::load({modules_[0], odd_rank}); }, "rank8");
  const std::string foreign = make_module(root_ / "t5ish", 6, {"q", "v"});
  expect_error([&] { api::Session(model_, api::Adapter::load(foreign)); }, "not a linear layer");
  // A hub id without an endpoint.
  unsetenv("LORAHUB_ENDPOINT");
  expect_error(
      [&] {
        api::ModuleSet::load({modules_[0], "someone/module"});
      },
      "module 'someone/module' is not a local directory");
  expect_error([&] { api::hub_fetch({"someone/module"}); }, "LORAHUB_ENDPOINT");
  api::ComposeOptions bad;
  bad.method = "average";
  expect_error([&] { set.compose({1, 1, 1}, bad); }, "average");
}

}  // namespace
}  // namespace lorahub::api_test

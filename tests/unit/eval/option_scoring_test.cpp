// The choice rule of option-likelihood scoring (eval/option_scoring.h), and its shared-prefix
// scores against per-pair teacher forcing; the log-likelihoods themselves are checked against
// transformers in tests/e2e/test_bbh.py (test_option_likelihood_matches_transformers_and_peft).
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>

#include "api/tiny_models.h"
#include "core/error.h"
#include "eval/option_scoring.h"
#include "lora/compose.h"
#include "lora/module_set.h"

namespace lorahub {
namespace {

TEST(OptionScoring, BestIsTheHighestLogLikelihoodFirstOnATie) {
  const std::vector<std::string> options = {"(A)", "(B)", "(C)"};
  EXPECT_EQ(best_option({-3.0, -2.0, -2.0}, options, false), 1u);
  EXPECT_EQ(best_option({-0.5, -2.0, -0.1}, options, false), 2u);
  EXPECT_EQ(best_option({-1.0, -1.0, -1.0}, options, true), 0u);  // numpy argmax: the first
}

TEST(OptionScoring, NormalizedDividesByCharactersNotBytes) {
  // Raw: "valid" (-2) beats "invalid" (-2.5); per character "invalid" (-2.5/7) beats "valid"
  // (-2/5).
  const std::vector<std::string> options = {"valid", "invalid"};
  EXPECT_EQ(best_option({-2.0, -2.5}, options, false), 0u);
  EXPECT_EQ(best_option({-2.0, -2.5}, options, true), 1u);
  // "é" is one character (two bytes): -1.5 per character loses to "ab"'s -1.6 / 2 = -0.8 (by
  // bytes it would be -0.75 and win).
  EXPECT_EQ(best_option({-1.5, -1.6}, {"\xc3\xa9", "ab"}, true), 1u);
}

TEST(OptionScoringMalformed, SizesMustAgree) {
  EXPECT_THROW(best_option({}, {}, false), Error);
  EXPECT_THROW(best_option({-1.0}, {"a", "b"}, false), Error);
}

// One prefill per question with the options decoded on from copies of its KV cache gives the
// log-likelihoods of scoring every (question, option) pair as its own sequence: on the base model
// and with a LoRA on the side path, options of different token lengths (so some leave the batch
// of decode steps early) and prompts of different lengths.
TEST(OptionScoring, SharedPrefixEqualsPerPairScores) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "option_scoring_shared";
  const auto model = load_model(api_test::make_tiny_llama(dir / "model"));
  const LoraMap lora = to_lora_map(load_lora_module(api_test::make_module(dir / "m", 3)));
  const auto bound = model->bind_lora(lora);
  const std::vector<std::string> prompts = {
      "Q: is it true?\nA:", "Q: a longer question here\nA:", "x"};
  const std::vector<std::string> options = {"(A)", "No", "Yes, it is", "7"};
  for (const BoundLora* adapter : {static_cast<const BoundLora*>(nullptr), bound.get()}) {
    OptionScoreOptions shared, per_pair;
    per_pair.shared_prefix = false;
    per_pair.batch_size = 5;  // batches that cut across questions
    if (adapter) shared.lora = per_pair.lora = {adapter};
    const auto a = option_log_likelihoods(*model, prompts, options, shared);
    const auto b = option_log_likelihoods(*model, prompts, options, per_pair);
    ASSERT_EQ(a.size(), prompts.size());
    for (size_t q = 0; q < prompts.size(); ++q)
      for (size_t o = 0; o < options.size(); ++o) {
        // f32 rounding of another batch shape (questions prefilled together, left-padded):
        // up to 1.4e-5 on a sum of 11 tokens' log-probabilities (-96).
        EXPECT_NEAR(a[q][o], b[q][o], 1e-5 + 2e-7 * std::abs(b[q][o]))
            << prompts[q] << " / " << options[o];
        EXPECT_LT(b[q][o], -0.1);  // a real score, not zero
      }
  }
}

}  // namespace
}  // namespace lorahub

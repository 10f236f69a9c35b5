// The choice rule of option-likelihood scoring (eval/option_scoring.h); the log-likelihoods
// themselves are checked against transformers in tests/e2e/test_bbh_options.py.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/option_scoring.h"

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

}  // namespace
}  // namespace lorahub

// eval/score.h's batching (the model side is held to transformers by tests/parity).
#include <gtest/gtest.h>

#include "eval/score.h"

namespace lorahub {
namespace {

std::vector<Example> numbered(int n) {
  std::vector<Example> examples;
  for (int i = 0; i < n; ++i) examples.push_back({{i}, {i}});
  return examples;
}

std::vector<std::pair<size_t, size_t>> batches(int n, int batch_size) {
  std::vector<std::pair<size_t, size_t>> seen;  // (first, size)
  for_each_batch(numbered(n), batch_size, [&](size_t first, const std::vector<Example>& batch) {
    EXPECT_EQ(batch.front().input_ids.front(), static_cast<int32_t>(first));
    seen.emplace_back(first, batch.size());
  });
  return seen;
}

TEST(Score, BatchesCoverEveryExampleInOrder) {
  using B = std::vector<std::pair<size_t, size_t>>;
  EXPECT_EQ(batches(5, 2), (B{{0, 2}, {2, 2}, {4, 1}}));
  EXPECT_EQ(batches(5, 0), (B{{0, 5}}));  // 0 = one batch
  EXPECT_EQ(batches(3, 10), (B{{0, 3}}));
  EXPECT_TRUE(batches(0, 4).empty());
}

TEST(Score, TokenMeanIsZeroForNoTokens) {
  EXPECT_DOUBLE_EQ(token_mean({6.0, 3}), 2.0);
  EXPECT_DOUBLE_EQ(token_mean({0.0, 0}), 0.0);
}

}  // namespace
}  // namespace lorahub

// RoPE against transformers (values printed by transformers 4.x: LlamaRotaryEmbedding's
// inv_freq, ROPE_INIT_FUNCTIONS["llama3"], apply_rotary_pos_emb), and its position rule.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/rope.h"

namespace lorahub {
namespace {

void expect_close(const std::vector<float>& got, const std::vector<float>& want, float rel) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], rel * std::max(1.0f, std::abs(want[i]))) << "at " << i;
}

TEST(Rope, InverseFrequenciesMatchTransformers) {
  expect_close(rope_inv_freq(8, 10000.0), {1.0f, 0.100000001f, 0.00999999978f, 0.00100000005f},
               1e-6f);
  RopeScaling llama3{.type = "llama3",
                     .factor = 8.0,
                     .low_freq_factor = 1.0,
                     .high_freq_factor = 4.0,
                     .original_max_position = 8192};
  // The three regimes: kept (short wavelength), smoothed, divided by the factor.
  expect_close(rope_inv_freq(8, 500000.0, llama3),
               {1.0f, 0.0376060307f, 0.000524846022f, 6.64786967e-06f}, 1e-5f);
  RopeScaling linear{.type = "linear", .factor = 4.0};
  expect_close(rope_inv_freq(8, 10000.0, linear), {0.25f, 0.025f, 0.0025f, 0.00025f}, 1e-6f);
}

TEST(Rope, RotationMatchesApplyRotaryPosEmb) {
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i) / 10.0f;  // 2 heads of 8
  const int64_t position = 5;
  apply_rope(x.data(), 1, 2, 8, &position, rope_inv_freq(8, 10000.0));
  expect_close(x,
               {0.383569717f, -0.151954517f, 0.169762552f, 0.296496272f, 0.113464884f, 0.486733824f,
                0.609246016f, 0.701491237f, 1.37763894f, 0.166571081f, 0.928779423f, 1.09248626f,
                -0.426744789f, 1.57234025f, 1.44822955f, 1.50548112f},
               1e-5f);
}

TEST(Rope, PositionZeroIsTheIdentityAndRowsUseTheirOwnPosition) {
  std::vector<float> x(2 * 8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f + static_cast<float>(i);
  std::vector<float> y = x;
  const int64_t positions[] = {0, 3};
  const auto inv = rope_inv_freq(8, 10000.0);
  apply_rope(y.data(), 2, 1, 8, positions, inv);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(y[i], x[i]);
  // Row 1 at position 3 equals that row rotated alone; the rotation keeps each pair's norm.
  std::vector<float> alone(x.begin() + 8, x.end());
  apply_rope(alone.data(), 1, 1, 8, &positions[1], inv);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(y[8 + i], alone[i]);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(std::hypot(y[8 + i], y[12 + i]), std::hypot(x[8 + i], x[12 + i]), 1e-4f);
  EXPECT_NE(y[8], x[8]);
}

TEST(RopeMalformed, RefusesUnknownScalingAndOddHeads) {
  EXPECT_THROW(rope_inv_freq(8, 10000.0, RopeScaling{.type = "yarn"}), Error);
  EXPECT_THROW(rope_inv_freq(7, 10000.0), Error);
}

}  // namespace
}  // namespace lorahub

// Each kernel against a scalar reference or values from PyTorch.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

TEST(Matmul, MatchesScalarLoops) {
  const int64_t m = 7, n = 13, k = 33;
  const auto a = random_values(m * k, 1), b = random_values(n * k, 2);
  std::vector<float> c(m * n, 1.0f), c_ab(m * n);
  matmul_abt(a.data(), b.data(), c.data(), m, n, k);
  // b as [k, n] (transposed copy) through matmul_ab gives the same product
  std::vector<float> bt(k * n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) bt[j * n + i] = b[i * k + j];
  matmul_ab(a.data(), bt.data(), c_ab.data(), m, n, k);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0.0;
      for (int64_t p = 0; p < k; ++p) ref += double(a[i * k + p]) * b[j * k + p];
      EXPECT_NEAR(c[i * n + j], ref, 1e-4);
      EXPECT_NEAR(c_ab[i * n + j], ref, 1e-4);
    }
  }
}

TEST(Matmul, BetaAccumulates) {
  const std::vector<float> a = {1, 2}, b = {3, 4};  // [1,2] · [1,2]ᵀ = 11
  std::vector<float> c = {5};
  matmul_abt(a.data(), b.data(), c.data(), 1, 1, 2, 1.0f);
  EXPECT_FLOAT_EQ(c[0], 16.0f);
}

TEST(RmsNorm, MatchesFormula) {
  const int64_t rows = 3, dim = 10;
  const auto x = random_values(rows * dim, 3), w = random_values(dim, 4);
  std::vector<float> y(rows * dim);
  rms_norm(x.data(), w.data(), y.data(), rows, dim, 1e-6f);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_NEAR(y[r * dim + i], w[i] * x[r * dim + i] * inv, 1e-5);
  }
}

TEST(Softmax, RowsSumToOneAndMaskedEntriesAreZero) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {1000.0f, 1001.0f, -inf, 0.5f, -inf, -inf};
  softmax_rows(x.data(), 2, 3);
  EXPECT_NEAR(x[0], 1.0 / (1.0 + std::exp(1.0)), 1e-6);
  EXPECT_NEAR(x[0] + x[1], 1.0, 1e-6);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_FLOAT_EQ(x[3], 1.0f);
  EXPECT_EQ(x[4], 0.0f);
}

TEST(Softmax, FullyMaskedRowIsZero) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x = {-inf, -inf};
  softmax_rows(x.data(), 1, 2);
  EXPECT_EQ(x[0], 0.0f);
  EXPECT_EQ(x[1], 0.0f);
}

TEST(ExpF32, WithinTwoUlpOfStdExp) {
  for (float x = -87.3f; x <= 88.3f; x += 0.0137f) {
    const float want = std::exp(x), got = exp_f32(x);
    EXPECT_LE(std::abs(got - want), 2.0f * (std::nextafter(want, INFINITY) - want)) << "x = " << x;
  }
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(-INFINITY), 0.0f);  // masked attention scores
  EXPECT_EQ(exp_f32(-100.0f), 0.0f);
  EXPECT_GT(exp_f32(100.0f), 1e38f);  // saturates near FLT_MAX instead of overflowing
}

TEST(LogSumExp, StableForLargeValues) {
  const std::vector<float> x = {1000.0f, 1000.0f};
  EXPECT_NEAR(log_sum_exp(x.data(), 2), 1000.0 + std::log(2.0), 1e-9);
}

TEST(Activations, MatchPyTorchValues) {
  // torch: F.relu, F.gelu, transformers NewGELUActivation, F.silu at -1.5, 0.3, 2
  std::vector<float> x = {-1.5f, 0.3f, 2.0f};
  const std::vector<std::pair<const char*, std::vector<float>>> expected = {
      {"relu", {0.0f, 0.3f, 2.0f}},
      {"gelu", {-0.10021086f, 0.18537344f, 1.95449972f}},
      {"gelu_new", {-0.10042843f, 0.18537094f, 1.95459771f}},
      {"silu", {-0.27363828f, 0.17233276f, 1.76159406f}},
  };
  for (const auto& [name, values] : expected) {
    std::vector<float> y = x;
    apply_activation(activation_from_name(name), y.data(), 3);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(y[i], values[i], 1e-6) << name << " at " << x[i];
  }
}

TEST(Activations, ActivateAndMultiplyEqualsTheTwoPasses) {
  // One fused pass (the gated feed-forward) gives the same floats as activation then multiply,
  // across the SIMD chunks and the tail (n is no multiple of the vector width or of the chunk).
  const int64_t n = 3 * 4096 + 37;
  const auto x = random_values(n, 5, 4.0f), y = random_values(n, 6, 2.0f);
  for (const char* name : {"relu", "gelu", "gelu_new", "silu"}) {
    const Activation act = activation_from_name(name);
    std::vector<float> two = x, fused = x;
    apply_activation(act, two.data(), n);
    multiply_inplace(two.data(), y.data(), n);
    activate_and_multiply(act, fused.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(fused[i], two[i]) << name << " at " << i;
  }
}

TEST(Embedding, CopiesRows) {
  const std::vector<float> table = {0, 1, 10, 11, 20, 21};
  const std::vector<int32_t> ids = {2, 0};
  std::vector<float> out(4);
  embedding_lookup(table.data(), 3, 2, ids.data(), 2, out.data());
  EXPECT_EQ(out, (std::vector<float>{20, 21, 0, 1}));
}

TEST(KernelsMalformed, UnknownActivation) {
  EXPECT_THROW(activation_from_name("gelu_fast_and_wrong"), Error);
}

TEST(KernelsMalformed, TokenOutsideEmbedding) {
  const std::vector<float> table(6);
  std::vector<float> out(2);
  for (int32_t bad : {3, -1}) {
    EXPECT_THROW(embedding_lookup(table.data(), 3, 2, &bad, 1, out.data()), Error);
  }
}

}  // namespace
}  // namespace lorahub

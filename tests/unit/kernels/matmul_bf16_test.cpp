// The bf16 fast path (kernels/matmul.h) against the fp32 reference path, with stated tolerances:
//  - exact to f32 accumulation order (1e-5 relative) against a double-precision product of the
//    SAME bf16-rounded inputs: the kernel computes what it claims;
//  - within 1e-2 of the matrix's largest |value| against the fp32 sgemm of the unrounded
//    inputs: the cost of bf16 (2^-8 relative per element, averaging out over k).
// Each for both implementations (oneDNN and our small-rows AVX512-BF16 kernel) and the default.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/matmul.h"
#include "kernels/small_rows_bf16.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  f32_to_bf16(v.data(), out.data(), v.size());
  return out;
}

// C = round_bf16(A) · Bᵀ in double, B given in bf16.
std::vector<double> exact_abt(const std::vector<float>& a, const std::vector<uint16_t>& b,
                              int64_t m, int64_t n, int64_t k) {
  std::vector<double> c(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t p = 0; p < k; ++p)
        sum += double(bf16_to_f32(f32_to_bf16(a[i * k + p]))) * double(bf16_to_f32(b[j * k + p]));
      c[i * n + j] = sum;
    }
  return c;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

struct Shape {
  int64_t m, n, k;
};

class MatmulBf16 : public ::testing::TestWithParam<std::tuple<Shape, Bf16Path>> {
 protected:
  void SetUp() override {
    const auto [shape, path] = GetParam();
    if (path == Bf16Path::kSmallRows && !small_rows_bf16_available())
      GTEST_SKIP() << "this build's CPU target has no AVX512-BF16";
    m = shape.m, n = shape.n, k = shape.k, p = path;
  }
  int64_t m = 0, n = 0, k = 0;
  Bf16Path p = Bf16Path::kAuto;
};

TEST_P(MatmulBf16, MatchesExactProductOfRoundedInputs) {
  auto a = random_values(m * k, 1), b = random_values(n * k, 2);
  auto b16 = to_bf16(b);
  std::vector<float> c(m * n);
  matmul_abt_bf16(a.data(), b16.data(), c.data(), m, n, k, 0.0f, p);
  auto want = exact_abt(a, b16, m, n, k);
  for (size_t i = 0; i < c.size(); ++i)
    ASSERT_NEAR(c[i], want[i], 1e-5 * std::sqrt(double(k)) * 4) << "element " << i;
}

TEST_P(MatmulBf16, WithinStatedToleranceOfFp32Path) {
  auto a = random_values(m * k, 3), b = random_values(n * k, 4);
  auto b16 = to_bf16(b);
  std::vector<float> fast(m * n), reference(m * n);
  matmul_abt_bf16(a.data(), b16.data(), fast.data(), m, n, k, 0.0f, p);
  matmul_abt(a.data(), b.data(), reference.data(), m, n, k);
  const double scale = max_abs(reference);
  for (size_t i = 0; i < fast.size(); ++i)
    ASSERT_NEAR(fast[i], reference[i], 1e-2 * scale) << "element " << i;
}

TEST_P(MatmulBf16, AccumulatesWithBeta) {
  auto a = random_values(m * k, 5);
  auto b16 = to_bf16(random_values(n * k, 6));
  std::vector<float> once(m * n, std::nanf("")), twice;  // beta 0 must not read C
  matmul_abt_bf16(a.data(), b16.data(), once.data(), m, n, k, 0.0f, p);
  twice = once;
  matmul_abt_bf16(a.data(), b16.data(), twice.data(), m, n, k, 0.5f, p);  // C = AB + C/2
  for (size_t i = 0; i < once.size(); ++i)
    ASSERT_NEAR(twice[i], 1.5 * once[i], 1e-5 * (1 + std::fabs(once[i]))) << "element " << i;
}

TEST_P(MatmulBf16, PreRoundedInputGivesTheSameFloats) {
  // A rounded once by the caller (shared by q, k, v) is the product matmul_abt_bf16 rounds itself.
  auto a = random_values(m * k, 7);
  auto b16 = to_bf16(random_values(n * k, 8));
  std::vector<float> own(m * n), pre(m * n);
  matmul_abt_bf16(a.data(), b16.data(), own.data(), m, n, k, 0.0f, p);
  matmul_abt_bf16(to_bf16(a).data(), b16.data(), pre.data(), m, n, k, 0.0f, p);
  for (size_t i = 0; i < own.size(); ++i) ASSERT_EQ(pre[i], own[i]) << "element " << i;
}

// Odd sizes (tails of the vector loops and register blocks), a single row and a batch of rows
// (generation), model-like widths (SmolLM2: 576, 192, 1536).
INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulBf16,
    ::testing::Combine(
        ::testing::Values(Shape{1, 1, 1}, Shape{3, 5, 7}, Shape{1, 64, 1024}, Shape{2, 6, 33},
                          Shape{5, 130, 576}, Shape{10, 192, 576}, Shape{16, 67, 1536},
                          Shape{37, 129, 257}, Shape{64, 256, 1024}),
        ::testing::Values(Bf16Path::kAuto, Bf16Path::kLibrary, Bf16Path::kSmallRows)));

TEST(MatmulBf16Malformed, NegativeShapeIsAnError) {
  float a = 1, c = 0;
  uint16_t b = f32_to_bf16(1.0f);
  EXPECT_THROW(matmul_abt_bf16(&a, &b, &c, 1, 1, -1), Error);
}

}  // namespace
}  // namespace lorahub

// The quantized products (kernels/quant_matmul.h) against the f32 product of the dequantized
// weights, for every format and both implementations, on every shape class: one row (decoding),
// a few, 8 and 16 (a batch of decoding sequences: one or two 8-row passes of the direct kernels,
// 11 and 13 with a tail pass), 32, more than a row tile (prefill, scoring), odd widths and the
// tail of a 64-value chunk.
// Stated tolerance: the activations are rounded to int8 per 32 values, so each
// output may differ from the exact product of the dequantized weights by at most Σ|w_i|·d_i/2
// (d_i the scale of x_i's block), plus f32 summation (1e-5 relative of Σ|w_i·x_i|). VNNI and the
// scalar reference compute the same integers and differ by f32 summation order only. The
// dequantized-tiles path (many rows) does not round A: it is held to the f32 summation term alone.
// kVnni (and kAuto up to 16 rows) runs the direct block kernels for Q4_0, Q4_1, Q8_0, Q4_K, Q6_K
// and I8 (weights decoded in registers from their blocks), the unpacking kernel for the others.
#include "kernels/quant_matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/matmul.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

struct FormatCase {
  QuantFormat format;
  int64_t block_values, block_bytes;
  std::vector<int> f16_scales;  // byte offsets of f16 fields set to sane scales
  int f32_scale = -1;           // byte offset of an f32 scale (Q8_K)
};

const std::vector<FormatCase>& formats() {
  static const std::vector<FormatCase> table = {
      {QuantFormat::Q4_0, 32, 18, {0}},      {QuantFormat::Q4_1, 32, 20, {0, 2}},
      {QuantFormat::Q5_0, 32, 22, {0}},      {QuantFormat::Q5_1, 32, 24, {0, 2}},
      {QuantFormat::Q8_0, 32, 34, {0}},      {QuantFormat::Q4_K, 256, 144, {0, 2}},
      {QuantFormat::Q5_K, 256, 176, {0, 2}}, {QuantFormat::Q6_K, 256, 210, {208}},
      {QuantFormat::Q8_K, 256, 292, {}, 0},
  };
  return table;
}

// Random blocks (every bit pattern of the quants and sub-scales) with scales of a sane size.
QuantMatrix random_matrix(const FormatCase& f, int64_t rows, int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  QuantMatrix m;
  m.format = f.format;
  m.rows = rows;
  m.cols = cols;
  m.data.resize(static_cast<size_t>(rows * cols / f.block_values * f.block_bytes));
  for (auto& b : m.data) b = static_cast<uint8_t>(byte(rng));
  for (size_t b0 = 0; b0 < m.data.size(); b0 += static_cast<size_t>(f.block_bytes)) {
    for (int off : f.f16_scales) {
      const uint16_t h = f32_to_f16(scale(rng));
      std::memcpy(&m.data[b0 + off], &h, 2);
    }
    if (f.f32_scale >= 0) {
      const float s = scale(rng) * 0.1f;
      std::memcpy(&m.data[b0 + f.f32_scale], &s, 4);
    }
  }
  return m;
}

// Per output: the exact product of the dequantized weights and the bound stated above.
struct Expected {
  std::vector<double> value, bound;
};
// `block`: the values that share an activation scale (32, or k: one scale per row); `levels`:
// the steps of max |x| in a block (127 for one int8 level, 127 · 254 for two).
// `bf16`: A and the weights rounded to bf16 instead (2^-8 of each |w·x|).
Expected expected(const std::vector<float>& a, const QuantMatrix& b, int64_t m, bool exact_a,
                  int64_t block = 32, double levels = 127.0, bool bf16 = false) {
  const int64_t n = b.rows, k = b.cols;
  std::vector<float> w(static_cast<size_t>(n * k));
  dequantize_rows(b, 0, n, w.data());
  Expected e{std::vector<double>(m * n), std::vector<double>(m * n)};
  for (int64_t i = 0; i < m; ++i) {
    std::vector<double> half_step(static_cast<size_t>(k));  // d/2 of each value's block
    for (int64_t b0 = 0; b0 < k; b0 += block) {
      double amax = 0;
      for (int64_t t = b0; t < std::min(k, b0 + block); ++t)
        amax = std::max(amax, double(std::fabs(a[i * k + t])));
      for (int64_t t = b0; t < std::min(k, b0 + block); ++t) half_step[t] = amax / levels / 2.0;
    }
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0, quant = 0, magnitude = 0;
      for (int64_t t = 0; t < k; ++t) {
        const double wv = w[j * k + t], xv = a[i * k + t];
        sum += wv * xv;
        quant += std::fabs(wv) * half_step[t];
        magnitude += std::fabs(wv * xv);
      }
      e.value[i * n + j] = sum;
      e.bound[i * n + j] = exact_a ? 1e-5 * magnitude + 1e-30
                           : bf16  ? (std::ldexp(1.0, -8) * 1.001 + 1e-5) * magnitude + 1e-30
                                   : quant * 1.001 + 1e-5 * (magnitude + quant) + 1e-30;
    }
  }
  return e;
}

struct Shape {
  int64_t m, n, k;
};

void check_product(const QuantMatrix& b, int64_t m, QuantPath path, std::vector<float> a = {}) {
  if (a.empty()) a = random_values(static_cast<size_t>(m * b.cols), 11);
  std::vector<float> c(static_cast<size_t>(m * b.rows), std::nanf(""));  // beta 0 must not read C
  matmul_abt_quant(a.data(), b, c.data(), m, 0.0f, path);
  // oneDNN's path: one scale per row, two int8 levels (int8_matmul.cpp).
  const bool per_row = path == QuantPath::kLibraryInt8;
  // kAuto on many rows of block weights takes the bf16 tiles where the bf16 product is native.
  const bool bf16 =
      path == QuantPath::kBf16Tiles || (path == QuantPath::kAuto && m > kIntegerRowsMax &&
                                        b.format != QuantFormat::I8 && bf16_matmul_native());
  const Expected e = expected(a, b, m, path == QuantPath::kDequantizedTiles, per_row ? b.cols : 32,
                              per_row ? 127.0 * 254.0 : 127.0, bf16);
  for (size_t i = 0; i < c.size(); ++i)
    ASSERT_NEAR(c[i], e.value[i], e.bound[i]) << quant_format_name(b.format) << " element " << i;
}

bool skip_path(QuantPath path) {
  return (path == QuantPath::kVnni && !quant_vnni_available()) ||
         (path == QuantPath::kLibraryInt8 && !int8_library_available());
}

class QuantBlocks : public ::testing::TestWithParam<std::tuple<size_t, Shape, QuantPath>> {};

TEST_P(QuantBlocks, WithinStatedToleranceOfDequantizedProduct) {
  const auto [fi, shape, path] = GetParam();
  if (skip_path(path)) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  const FormatCase& f = formats()[fi];
  // k in whole blocks: shape.k counts 32-value units for the legacy formats, 256 for K-quants.
  const int64_t k = f.block_values == 32 ? shape.k * 32 : (shape.k + 7) / 8 * 256;
  check_product(random_matrix(f, shape.n, k, 5), shape.m, path);
}

// k units: 1 (a lone half chunk), 3 (a chunk and a tail), 18 (SmolLM2's 576); K-quants round up.
// Q4_1's grouped kernel (4 blocks per step; 4 weight rows per pass at 1 row of A, 2 at 2-4) also
// meets 7 and 5 blocks (a whole group and a 3- or 1-block tail) with weight rows left over.
INSTANTIATE_TEST_SUITE_P(
    Shapes, QuantBlocks,
    ::testing::Combine(::testing::Range<size_t>(0, 9),
                       ::testing::Values(Shape{1, 1, 1}, Shape{1, 67, 18}, Shape{3, 5, 3},
                                         Shape{8, 5, 18}, Shape{11, 4, 3}, Shape{16, 7, 9},
                                         Shape{32, 9, 8}, Shape{37, 6, 24}, Shape{300, 3, 9},
                                         Shape{1, 6, 7}, Shape{2, 7, 5}),
                       ::testing::Values(QuantPath::kScalar, QuantPath::kVnni,
                                         QuantPath::kDequantizedTiles, QuantPath::kBf16Tiles,
                                         QuantPath::kAuto)));

class QuantInt8 : public ::testing::TestWithParam<std::tuple<Shape, QuantPath>> {};

TEST_P(QuantInt8, WithinStatedToleranceOfDequantizedProduct) {
  const auto [shape, path] = GetParam();
  if (skip_path(path)) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  const auto w = random_values(static_cast<size_t>(shape.n * shape.k), 3, 0.1f);
  check_product(quantize_rows_int8(w.data(), shape.n, shape.k), shape.m, path);
}

TEST_P(QuantInt8, WeightsWithinHalfAStepOfF32) {
  const auto [shape, path] = GetParam();
  const auto w = random_values(static_cast<size_t>(shape.n * shape.k), 4);
  const QuantMatrix q = quantize_rows_int8(w.data(), shape.n, shape.k);
  std::vector<float> back(w.size());
  dequantize_rows(q, 0, shape.n, back.data());
  for (int64_t r = 0; r < shape.n; ++r)
    for (int64_t t = 0; t < shape.k; ++t)
      ASSERT_LE(std::fabs(back[r * shape.k + t] - w[r * shape.k + t]),
                q.row_scale[r] * 0.5f * 1.0001f);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, QuantInt8,
    ::testing::Combine(::testing::Values(Shape{1, 1, 1}, Shape{3, 5, 7}, Shape{1, 64, 576},
                                         Shape{2, 6, 33}, Shape{8, 9, 576}, Shape{13, 4, 65},
                                         Shape{16, 5, 100}, Shape{32, 67, 100},
                                         Shape{300, 9, 1536}),
                       ::testing::Values(QuantPath::kScalar, QuantPath::kVnni,
                                         QuantPath::kDequantizedTiles, QuantPath::kLibraryInt8,
                                         QuantPath::kAuto)));

// Outlying activation columns (LLM.int8()'s case): with a few columns 200x the rest, oneDNN's
// path keeps the other values within half a step of their own one-level int8 scale (the bound
// computed without the outliers): the second level (step / 254) more than makes up the 200x.
TEST(QuantInt8Library, OutlierColumnsKeepTheOtherValuesFine) {
  if (!int8_library_available()) GTEST_SKIP() << "this build has no oneDNN";
  const int64_t m = 40, n = 24, k = 320;
  const auto w = random_values(static_cast<size_t>(n * k), 6, 0.1f);
  const QuantMatrix b = quantize_rows_int8(w.data(), n, k);
  auto a = random_values(static_cast<size_t>(m * k), 7);
  std::vector<float> fine = a;
  const int64_t outliers[] = {3, 100, 257};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t t : outliers) {
      a[i * k + t] *= 200.0f;
      fine[i * k + t] = 0.0f;  // the bound's step: the row's other values only
    }
  std::vector<float> c(static_cast<size_t>(m * n));
  matmul_abt_quant(a.data(), b, c.data(), m, 0.0f, QuantPath::kLibraryInt8);
  const Expected exact = expected(a, b, m, true);
  const Expected step = expected(fine, b, m, false, k);
  for (size_t i = 0; i < c.size(); ++i)
    ASSERT_NEAR(c[i], exact.value[i], step.bound[i] + exact.bound[i]) << "element " << i;
}

// Two-level weights (quantize_rows_int8's two_levels, W ≈ s·(q₁ + q₂/254)): dequantized within
// a 254th of a one-level step of f32; every path's product against the f32 weights within the
// activations' own rounding plus the second weight level's (bounded by 1/100 of what one weight
// level alone leaves, Σ|x|·s/2; one level exceeds that bound where A is not rounded coarsely);
// oneDNN's path drops the u₂·q₂ term (second levels of both, at most d/2 · s/2 per value: added to
// its bound).
TEST(QuantInt8, TwoLevelWeightsAreFifteenBitsOnEveryPath) {
  const int64_t n = 19, k = 576;
  const auto w = random_values(static_cast<size_t>(n * k), 21, 0.05f);
  const QuantMatrix one = quantize_rows_int8(w.data(), n, k);
  const QuantMatrix two = quantize_rows_int8(w.data(), n, k, true);
  ASSERT_NE(two.residual, nullptr);
  ASSERT_EQ(two.data, one.data);
  std::vector<float> back(w.size());
  dequantize_rows(two, 0, n, back.data());
  for (size_t i = 0; i < w.size(); ++i)
    ASSERT_LE(std::fabs(back[i] - w[i]), two.row_scale[i / k] / 254.0f * 0.5f * 1.01f) << i;
  for (const int64_t m : {1, 5, 16, 40}) {
    for (const QuantPath path : {QuantPath::kScalar, QuantPath::kVnni, QuantPath::kDequantizedTiles,
                                 QuantPath::kLibraryInt8, QuantPath::kAuto}) {
      if (skip_path(path)) continue;
      const auto a = random_values(static_cast<size_t>(m * k), 22);
      std::vector<float> c1(static_cast<size_t>(m * n)), c2(c1.size(), std::nanf(""));
      matmul_abt_quant(a.data(), one, c1.data(), m, 0.0f, path);
      matmul_abt_quant(a.data(), two, c2.data(), m, 0.0f, path);
      // The activations' rounding as the path does it (none on the tiles, per 32 on the integer
      // kernels, two levels per row on oneDNN's) against the two-level weights.
      const bool per_row =
          path == QuantPath::kLibraryInt8 || (path == QuantPath::kAuto && m >= kLibraryRowsMin);
      const Expected act = expected(a, two, m, path == QuantPath::kDequantizedTiles,
                                    per_row ? k : 32, per_row ? 127.0 * 254.0 : 127.0);
      double worst_one = 0;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double exact = 0, weight_step = 0, amax = 0;
          for (int64_t t = 0; t < k; ++t) {
            exact += double(a[i * k + t]) * w[j * k + t];
            weight_step += std::fabs(a[i * k + t]) * one.row_scale[j] / 2.0;
            amax = std::max(amax, double(std::fabs(a[i * k + t])));
          }
          const double dropped = per_row ? k * amax / 127.0 / 2.0 * two.row_scale[j] / 2.0 : 0.0;
          const double bound = act.bound[i * n + j] + weight_step / 100.0;
          ASSERT_NEAR(c2[i * n + j], exact, bound + dropped) << "m " << m << " path " << int(path);
          worst_one = std::max(worst_one, std::fabs(c1[i * n + j] - exact) / bound);
        }
      // Where the activations are (near) exact, one weight level alone breaks that bound (on the
      // per-32 integer kernels the activations' own one-level rounding dominates both).
      if (per_row || path == QuantPath::kDequantizedTiles)
        EXPECT_GT(worst_one, 1.0) << "one level within the two-level bound, path " << int(path);
    }
  }
}

TEST(QuantInt8Library, BetaAccumulatesAndMatchesUnpackedWeights) {
  if (!int8_library_available()) GTEST_SKIP() << "this build has no oneDNN";
  const int64_t m = 33, n = 70, k = 200;
  const auto w = random_values(static_cast<size_t>(n * k), 8, 0.1f);
  const QuantMatrix b = quantize_rows_int8(w.data(), n, k);
  QuantMatrix plain = b;  // the same values, oneDNN repacking them on each call
  plain.library_pack = nullptr;
  const auto a = random_values(static_cast<size_t>(m * k), 9);
  std::vector<float> c(static_cast<size_t>(m * n)), p(c.size());
  matmul_abt_quant(a.data(), b, c.data(), m, 0.0f, QuantPath::kLibraryInt8);
  matmul_abt_quant(a.data(), plain, p.data(), m, 0.0f, QuantPath::kLibraryInt8);
  ASSERT_EQ(c, p);  // the same integers, the same epilogue
  std::vector<float> twice = c;
  matmul_abt_quant(a.data(), b, twice.data(), m, 0.5f, QuantPath::kLibraryInt8);
  for (size_t i = 0; i < c.size(); ++i)
    ASSERT_NEAR(twice[i], 1.5f * c[i], 1e-5 * (1 + std::fabs(c[i])));
}

// The bf16 tiles write each tile into its own columns of C (rows n apart) and add beta·C: a
// product over several tiles (1100 weight rows of 2048 values: 4 tiles of 288 rows at 2 threads,
// 3 at 1) with beta 0.5 against the dequantized product, within the bf16 bound.
TEST(QuantMatmul, Bf16TilesCoverEveryColumnAndBetaAccumulates) {
  const QuantMatrix b = random_matrix(formats()[1], 1100, 2048, 13);  // Q4_1
  const int64_t m = 20;
  const auto a = random_values(static_cast<size_t>(m * b.cols), 14);
  const auto before = random_values(static_cast<size_t>(m * b.rows), 15);
  std::vector<float> c = before;
  matmul_abt_quant(a.data(), b, c.data(), m, 0.5f, QuantPath::kBf16Tiles);
  const Expected e = expected(a, b, m, false, 32, 127.0, true);
  for (size_t i = 0; i < c.size(); ++i)
    ASSERT_NEAR(c[i], e.value[i] + 0.5 * before[i], e.bound[i] + 1e-6) << "element " << i;
}

// Degenerate products on the tile paths: no weight rows, or no rows of A, write nothing.
TEST(QuantMatmul, TilePathsTakeEmptyProducts) {
  const QuantMatrix none = random_matrix(formats()[1], 0, 64, 16);
  const QuantMatrix some = random_matrix(formats()[1], 3, 64, 17);
  const auto a = random_values(40 * 64, 18);
  std::vector<float> c(1, 7.0f);
  for (const QuantPath path :
       {QuantPath::kBf16Tiles, QuantPath::kDequantizedTiles, QuantPath::kAuto}) {
    matmul_abt_quant(a.data(), none, c.data(), 40, 0.0f, path);
    matmul_abt_quant(a.data(), some, c.data(), 0, 0.0f, path);
    EXPECT_EQ(c[0], 7.0f) << "path " << int(path);
  }
}

TEST(QuantMatmul, VnniAndScalarAgreeAndBetaAccumulates) {
  if (!quant_vnni_available()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  const QuantMatrix b = random_matrix(formats()[5], 13, 512, 9);  // Q4_K: offsets too
  const int64_t m = 7;
  const auto a = random_values(static_cast<size_t>(m * b.cols), 12);
  std::vector<float> s(m * b.rows), v(m * b.rows);
  matmul_abt_quant(a.data(), b, s.data(), m, 0.0f, QuantPath::kScalar);
  matmul_abt_quant(a.data(), b, v.data(), m, 0.0f, QuantPath::kVnni);
  for (size_t i = 0; i < s.size(); ++i) ASSERT_NEAR(v[i], s[i], 1e-5 * (1 + std::fabs(s[i])));
  std::vector<float> twice = v;
  matmul_abt_quant(a.data(), b, twice.data(), m, 0.5f, QuantPath::kVnni);
  for (size_t i = 0; i < v.size(); ++i)
    ASSERT_NEAR(twice[i], 1.5f * v[i], 1e-5 * (1 + std::fabs(v[i])));
}

// The K-quant direct kernels (one super-block's scales decoded once for all rows of A) against
// the scalar reference on Qwen2.5 1.5B's widths: 1536 (6 super-blocks) and 8960 (35, an odd
// count), 1 row (decoding), 3 (a tail pass) and 9 (an 8-row pass and a tail).
TEST(QuantMatmul, KQuantDirectKernelsMatchScalarOnQwenWidths) {
  if (!quant_vnni_available()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  for (size_t fi : {size_t{5}, size_t{7}})  // Q4_K, Q6_K
    for (int64_t k : {1536, 8960})
      for (int64_t m : {1, 3, 9}) {
        const QuantMatrix b = random_matrix(formats()[fi], 5, k, 21);
        const auto a = random_values(static_cast<size_t>(m * k), 22);
        std::vector<float> s(m * b.rows), v(m * b.rows);
        matmul_abt_quant(a.data(), b, s.data(), m, 0.0f, QuantPath::kScalar);
        matmul_abt_quant(a.data(), b, v.data(), m, 0.0f, QuantPath::kVnni);
        // The same integers: f32 summation order alone, 1e-5 of Σ|w·x| (exact_a: that term only).
        const Expected e = expected(a, b, m, true);
        for (size_t i = 0; i < s.size(); ++i)
          ASSERT_NEAR(v[i], s[i], e.bound[i])
              << quant_format_name(b.format) << " k " << k << " m " << m << " element " << i;
      }
}

// matmul_abt_quant_many (one quantization of A, one parallel region over all products' weight
// rows, cut between threads by bytes) gives exactly matmul_abt_quant's numbers on each product:
// mixed formats (Q4_1's grouped kernel, Q8_0, the K-quants, I8) and row counts whose 4-row passes
// are cut at odd places, on 1-3 threads; Q5_0 (no direct kernel) and 20 rows fall back to one
// call per product.
TEST(QuantMatmul, ManyProductsMatchOneAtATimeExactly) {
  const int64_t k = 512;
  std::vector<QuantMatrix> mats;
  unsigned seed = 30;
  for (auto [fi, n] : {std::pair{size_t{1}, int64_t{13}},
                       {size_t{4}, 7},
                       {size_t{1}, 130},
                       {size_t{5}, 5},
                       {size_t{7}, 9}})
    mats.push_back(random_matrix(formats()[fi], n, k, seed++));
  const auto w = random_values(static_cast<size_t>(11 * k), 31);
  mats.push_back(quantize_rows_int8(w.data(), 11, k));
  const std::vector<QuantMatrix> fallback = {random_matrix(formats()[1], 6, k, 40),
                                             random_matrix(formats()[2], 3, k, 41)};  // Q5_0
  const int threads = compute_threads();
  for (int t : {1, 2, 3}) {
    set_compute_threads(t);
    for (const std::vector<QuantMatrix>* set : {&std::as_const(mats), &fallback})
      for (int64_t m : {1, 2, 3, 5, 8, 11, 16, 20}) {
        const auto a = random_values(static_cast<size_t>(m * k), 32 + static_cast<unsigned>(m));
        std::vector<std::vector<float>> one, many;
        std::vector<QuantProduct> products;
        for (const QuantMatrix& b : *set) {
          one.emplace_back(static_cast<size_t>(m * b.rows));
          many.emplace_back(static_cast<size_t>(m * b.rows), std::nanf(""));
          matmul_abt_quant(a.data(), b, one.back().data(), m);
        }
        for (size_t p = 0; p < set->size(); ++p) products.push_back({&(*set)[p], many[p].data()});
        matmul_abt_quant_many(a.data(), m, products);
        for (size_t p = 0; p < set->size(); ++p)
          for (size_t i = 0; i < one[p].size(); ++i)
            ASSERT_EQ(many[p][i], one[p][i]) << quant_format_name((*set)[p].format) << " threads "
                                             << t << " m " << m << " element " << i;
      }
  }
  set_compute_threads(threads);
}

TEST(QuantMatmulMalformed, ManyProductsOfDifferentWidthsAreAnError) {
  const QuantMatrix wide = random_matrix(formats()[4], 2, 128, 1),
                    narrow = random_matrix(formats()[4], 2, 64, 2);
  std::vector<float> a(128), c(4);
  EXPECT_THROW(matmul_abt_quant_many(a.data(), 1, {{&wide, c.data()}, {&narrow, c.data()}}),
               Error);  // products of one A share its width
}

TEST(QuantMatmulMalformed, PartialBlocksAreAnError) {
  QuantMatrix b = random_matrix(formats()[4], 2, 64, 1);
  b.data.pop_back();
  std::vector<float> a(64), c(2);
  EXPECT_THROW(matmul_abt_quant(a.data(), b, c.data(), 1), Error);
}

}  // namespace
}  // namespace lorahub

// The decoding step's attention kernels over a bf16 cache (kernels/decode_attention.h): bit for
// bit the arithmetic their header states (the scalar references), at the strides of a cache laid
// out by head and by slot, key counts that are and are not multiples of the 16-key block, and
// masked (p = 0) keys; and close to a double-precision dot product (what the arithmetic means).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "kernels/decode_attention.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

std::vector<uint16_t> bf16_values(size_t n, uint32_t seed) {
  const std::vector<float> f = random_values(n, seed);
  std::vector<uint16_t> out(n);
  f32_to_bf16(f.data(), out.data(), n);
  return out;
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof(float)) == 0;
}

TEST(DecodeAttentionBf16, ScoresAreTheStatedArithmeticBitForBit) {
  for (int64_t hd : {32, 64, 128}) {
    if (!decode_attention_bf16_available(hd)) {  // a CPU without AVX-512: the kernel refuses
      float out = 0;
      const std::vector<uint16_t> k(static_cast<size_t>(hd));
      EXPECT_THROW(dot_rows_bf16(&out, k.data(), hd, 1, hd, &out), Error);
      continue;
    }
    for (int64_t count : {1, 15, 16, 17, 90, 256}) {
      for (int64_t stride : {hd, 16 * hd}) {  // by head; by slot (16 heads)
        const std::vector<float> q = random_values(static_cast<size_t>(hd), 7);
        const std::vector<uint16_t> k =
            bf16_values(static_cast<size_t>(count * stride), static_cast<uint32_t>(count));
        std::vector<float> got(static_cast<size_t>(count) + 1, -1.0f), want(got);
        dot_rows_bf16(q.data(), k.data(), stride, count, hd, got.data());
        dot_rows_bf16_reference(q.data(), k.data(), stride, count, hd, want.data());
        for (int64_t j = 0; j < count; ++j) {
          ASSERT_TRUE(same_bits(got[j], want[j]))
              << "hd " << hd << " count " << count << " stride " << stride << " key " << j << ": "
              << got[j] << " vs " << want[j];
          double exact = 0;
          for (int64_t c = 0; c < hd; ++c)
            exact += double(q[c]) * double(bf16_to_f32(k[j * stride + c]));
          EXPECT_NEAR(got[j], exact, 1e-5 * (1 + std::fabs(exact)));
        }
        EXPECT_EQ(got[count], -1.0f) << "wrote past the last key";
      }
    }
  }
}

TEST(DecodeAttentionBf16, WeightedSumIsTheStatedArithmeticBitForBit) {
  for (int64_t hd : {32, 64, 128}) {
    if (!decode_attention_bf16_available(hd)) {
      std::vector<float> out(static_cast<size_t>(hd));
      const std::vector<uint16_t> v(static_cast<size_t>(hd));
      EXPECT_THROW(weighted_sum_bf16(out.data(), v.data(), hd, 1, hd, out.data()), Error);
      continue;
    }
    for (int64_t count : {1, 17, 90, 256}) {
      const int64_t stride = hd;
      std::vector<float> p = random_values(static_cast<size_t>(count), 3);
      for (int64_t j = 0; j < count; j += 5) p[j] = 0.0f;  // masked keys
      const std::vector<uint16_t> v = bf16_values(static_cast<size_t>(count * stride), 11);
      std::vector<float> got(static_cast<size_t>(hd) + 1, -1.0f), want(got);
      weighted_sum_bf16(p.data(), v.data(), stride, count, hd, got.data());
      weighted_sum_bf16_reference(p.data(), v.data(), stride, count, hd, want.data());
      for (int64_t c = 0; c < hd; ++c) {
        ASSERT_TRUE(same_bits(got[c], want[c])) << "hd " << hd << " count " << count << " value "
                                                << c << ": " << got[c] << " vs " << want[c];
        double exact = 0;
        for (int64_t j = 0; j < count; ++j)
          exact += double(p[j]) * double(bf16_to_f32(v[j * stride + c]));
        EXPECT_NEAR(got[c], exact, 1e-5 * (1 + std::fabs(exact)));
      }
      EXPECT_EQ(got[hd], -1.0f) << "wrote past head_dim";
    }
  }
}

TEST(DecodeAttentionBf16, TakesOnlyHeadSizesOfWholeChunks) {
  EXPECT_FALSE(decode_attention_bf16_available(48));
  EXPECT_FALSE(decode_attention_bf16_available(0));
  EXPECT_FALSE(decode_attention_bf16_available(512));
}

}  // namespace
}  // namespace lorahub

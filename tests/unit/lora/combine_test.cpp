// The combination methods beyond LoraHub's (lora/combine.h): what each one guarantees whatever
// the reference's numerics (exactness of cat, the seeded DARE masks, PEFT's single-module
// fallback), and clean errors for options that do not fit. Parity with PEFT itself:
// tests/parity/test_combine_peft.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>

#include "core/error.h"
#include "lora/combine.h"
#include "lora/compose.h"
#include "support/one_layer_module.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

// One target layer "enc.q" (in 6, out 4, rank 2), scale 2 (alpha 4 / r 2).
LoraModule make_module(const std::string& path, unsigned seed) {
  return test_support::one_layer_module(path, seed, 2, 6, 4);
}

ModuleSet make_set(size_t n = 3) {
  std::vector<LoraModule> modules;
  for (size_t i = 0; i < n; ++i) modules.push_back(make_module("m" + std::to_string(i), i + 1));
  return ModuleSet::from_modules(std::move(modules));
}

// scale · B · A of a module's only layer, [4, 6].
std::vector<double> update(const LoraModule& m) {
  const LoraTensor &a = m.tensors[0], &b = m.tensors[1];
  const int64_t r = a.shape[0], in = a.shape[1], out = b.shape[0];
  std::vector<double> u(out * in, 0.0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = 0; i < in; ++i)
      for (int64_t k = 0; k < r; ++k)
        u[o * in + i] += a.scale * b.values[o * r + k] * a.values[k * in + i];
  return u;
}

CombineOptions with(CombineMethod method, std::optional<double> density = std::nullopt) {
  CombineOptions o;
  o.method = method;
  o.density = density;
  return o;
}

TEST(Combine, CatIsExactlyTheWeightedSumOfUpdatesAtSummedRank) {
  const ModuleSet set = make_set();
  const std::vector<double> w = {0.7, -0.4, 1.2};
  const LoraModule out = combine_modules(set, w, with(CombineMethod::kCat));
  EXPECT_EQ(out.config.r, 6);
  EXPECT_EQ(out.config.lora_alpha, 6.0);
  EXPECT_EQ(out.tensors[0].shape, (Shape{6, 6}));
  EXPECT_FLOAT_EQ(out.tensors[0].scale, 1.0f);
  const std::vector<double> got = update(out);
  for (size_t k = 0; k < got.size(); ++k) {
    double want = 0;
    for (size_t i = 0; i < set.size(); ++i) want += w[i] * update(set[i])[k];
    EXPECT_NEAR(got[k], want, 1e-5) << k;
  }
}

TEST(Combine, SvdAtFullRankIsTheWeightedSumOfUpdates) {
  const ModuleSet set = make_set();
  const std::vector<double> w = {0.7, -0.4, 1.2};
  CombineOptions o = with(CombineMethod::kSvd);
  o.svd_rank = 4;  // min(out, in): the SVD loses nothing
  const std::vector<double> got = update(combine_modules(set, w, o));
  for (size_t k = 0; k < got.size(); ++k) {
    double want = 0;
    for (size_t i = 0; i < set.size(); ++i) want += w[i] * update(set[i])[k];
    EXPECT_NEAR(got[k], want, 1e-5) << k;
  }
}

TEST(Combine, LinearSplitsTheWeightAsSquareRootsAndTheSignGoesOnA) {
  const ModuleSet set = make_set(2);
  const LoraModule out = combine_modules(set, {1.0, -0.5}, with(CombineMethod::kLinear));
  const float wa0 = std::sqrt(2.0f), wa1 = -std::sqrt(1.0f), wb0 = std::sqrt(2.0f), wb1 = 1.0f;
  for (size_t k = 0; k < out.tensors[0].values.size(); ++k)
    EXPECT_FLOAT_EQ(out.tensors[0].values[k],
                    set[0].tensors[0].values[k] * wa0 + set[1].tensors[0].values[k] * wa1);
  for (size_t k = 0; k < out.tensors[1].values.size(); ++k)
    EXPECT_FLOAT_EQ(out.tensors[1].values[k],
                    set[0].tensors[1].values[k] * wb0 + set[1].tensors[1].values[k] * wb1);
}

TEST(Combine, LoraHubIsTheDefaultAndUnchanged) {
  const ModuleSet set = make_set();
  const std::vector<double> w = {0.3, 0.2, -0.1};
  const LoraModule a = combine_modules(set, w, CombineOptions{});
  const LoraModule b = compose_module(set, w);
  for (size_t t = 0; t < a.tensors.size(); ++t) EXPECT_EQ(a.tensors[t].values, b.tensors[t].values);
}

TEST(Combine, OneModuleFallsBackToLinearAsPeft) {
  const ModuleSet set = make_set(1);
  const LoraModule ties = combine_modules(set, {0.5}, with(CombineMethod::kTies, 0.2));
  const LoraModule linear = combine_modules(set, {0.5}, with(CombineMethod::kLinear));
  for (size_t t = 0; t < ties.tensors.size(); ++t)
    EXPECT_EQ(ties.tensors[t].values, linear.tensors[t].values);
}

TEST(Combine, TiesKeepsTheDensestValuesAndDropsDisagreeingSigns) {
  const ModuleSet set = make_set();
  const LoraModule out = combine_modules(set, {1, 1, 1}, with(CombineMethod::kTies, 0.25));
  size_t zeros = 0;
  for (float v : out.tensors[0].values) zeros += v == 0.0f;
  EXPECT_GT(zeros, 0u);  // 3 of 12 values kept per module: some positions lose all of them
}

// PEFT's ties() on one stack as merge_utils writes it, value by value: magnitude pruning,
// the sign elected over the pruned values, the mean of the weighted values that agree.
std::vector<float> peft_ties(std::vector<std::vector<float>> stack, const std::vector<float>& v,
                             double density, MajoritySign rule) {
  for (auto& t : stack) {
    std::vector<float> sorted(t.size());
    for (size_t k = 0; k < t.size(); ++k) sorted[k] = std::abs(t[k]);
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    const size_t keep = static_cast<size_t>(density * t.size());
    for (float& x : t)
      if (keep == 0 || std::abs(x) < sorted[keep - 1]) x = 0.0f;  // no ties in random values
  }
  const auto sign = [](float x) { return static_cast<float>((x > 0) - (x < 0)); };
  std::vector<float> out(stack[0].size());
  for (size_t k = 0; k < out.size(); ++k) {
    float magnitude = 0.0f;
    for (const auto& t : stack) magnitude += rule == MajoritySign::kTotal ? t[k] : sign(t[k]);
    const float elected = magnitude >= 0 ? 1.0f : -1.0f;
    float mixed = 0.0f, kept = 0.0f;
    for (size_t i = 0; i < stack.size(); ++i)
      if (sign(stack[i][k]) == elected) mixed += stack[i][k] * v[i], kept += 1.0f;
    out[k] = mixed / std::max(kept, 1.0f);
  }
  return out;
}

// The weight search reuses one Combiner (the pruning and the sign election done once) for
// every w: each result equals PEFT's ties() recomputed from scratch for that w, to the bit.
TEST(Combine, OneCombinerForManyWeightsEqualsTiesFromScratch) {
  const ModuleSet set = make_set(4);
  for (MajoritySign rule : {MajoritySign::kTotal, MajoritySign::kFrequency}) {
    CombineOptions o = with(CombineMethod::kTies, 0.5);
    o.majority_sign = rule;
    const Combiner combiner(set, o);
    for (const std::vector<double>& w : std::vector<std::vector<double>>{
             {1, 1, 1, 1}, {0.3, -0.8, 1.5, 0}, {-1, -0.2, 0.1, 2}, {0, 0, 0, 0}}) {
      const LoraModule got = combiner(w);
      for (size_t t = 0; t < 2; ++t) {  // lora_A: the sign on A; lora_B: √|w·s| alone
        std::vector<std::vector<float>> stack;
        std::vector<float> v;
        for (size_t i = 0; i < set.size(); ++i) {
          stack.push_back(set[i].tensors[t].values);
          const double ws = w[i] * set[i].tensors[0].scale;
          v.push_back(static_cast<float>(std::sqrt(std::abs(ws)) * (t == 0 && ws < 0 ? -1 : 1)));
        }
        EXPECT_EQ(got.tensors[t].values, peft_ties(stack, v, 0.5, rule)) << t;
      }
      EXPECT_EQ(got.tensors[0].values, combine_modules(set, w, o).tensors[0].values);
    }
  }
}

TEST(Combine, SeededDropMasksAreReproducibleAndKeepTheDensity) {
  const auto a = seeded_drop_mask(7, "enc.q.lora_A", 1, 100000, 0.3);
  EXPECT_EQ(a, seeded_drop_mask(7, "enc.q.lora_A", 1, 100000, 0.3));
  EXPECT_NE(a, seeded_drop_mask(8, "enc.q.lora_A", 1, 100000, 0.3));
  EXPECT_NE(a, seeded_drop_mask(7, "enc.q.lora_A", 2, 100000, 0.3));
  EXPECT_NE(a, seeded_drop_mask(7, "enc.q.lora_B", 1, 100000, 0.3));
  double kept = 0;
  for (float m : a) kept += m;
  EXPECT_NEAR(kept / a.size(), 0.3, 0.005);  // 3.5 sigma of Binomial(1e5, 0.3)
}

TEST(Combine, DareIsReproducibleForASeedAndRescalesTheKeptValues) {
  const ModuleSet set = make_set();
  CombineOptions o = with(CombineMethod::kDareLinear, 0.5);
  o.seed = 3;
  const std::vector<double> w = {1, 0, 0};
  const LoraModule a = combine_modules(set, w, o), b = combine_modules(set, w, o);
  EXPECT_EQ(a.tensors[0].values, b.tensors[0].values);
  const float sw = std::sqrt(2.0f);  // √(w·scale)
  for (size_t k = 0; k < a.tensors[0].values.size(); ++k) {
    const float v = a.tensors[0].values[k], src = set[0].tensors[0].values[k];
    EXPECT_TRUE(v == 0.0f || std::abs(v - src / 0.5f * sw) < 1e-6) << k;
  }
  o.seed = 4;
  EXPECT_NE(a.tensors[0].values, combine_modules(set, w, o).tensors[0].values);
}

TEST(CombineMalformed, OptionsThatDoNotFitTheMethod) {
  const ModuleSet set = make_set();
  const std::vector<double> w = {1, 1, 1};
  EXPECT_THROW(combine_modules(set, w, with(CombineMethod::kTies)), Error);  // no density
  EXPECT_THROW(combine_modules(set, w, with(CombineMethod::kTies, 1.5)), Error);
  EXPECT_THROW(combine_modules(set, {1, 1}, with(CombineMethod::kCat)), Error);
  EXPECT_THROW(combine_modules(set, {1, NAN, 1}, with(CombineMethod::kCat)), Error);
  CombineOptions o = with(CombineMethod::kSvd);
  o.svd_rank = 5;  // the layer is [4, 6]
  EXPECT_THROW(combine_modules(set, w, o), Error);
  o.svd_rank = 0;
  o.svd_clamp = 2.0;
  EXPECT_THROW(combine_modules(set, w, o), Error);
  EXPECT_THROW(parse_combine_method("tie"), Error);
  EXPECT_THROW(parse_majority_sign("most"), Error);
  try {
    combine_modules(set, w, with(CombineMethod::kDareTies));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("needs a density"), std::string::npos) << e.what();
  }
}

// Counts are checked before any module is read (the directories here do not exist).
TEST(CombineMalformed, AdapterFromModulesNeedsOneWeightPerModule) {
  const CombineOptions lorahub;
  const auto message = [&](const std::vector<std::string>& dirs, const std::vector<double>& w) {
    try {
      adapter_from_modules(dirs, w, lorahub);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({}, {}), "no adapter given");
  EXPECT_EQ(message({"/no/a", "/no/b"}, {}), "2 modules need weights (one per module)");
  EXPECT_EQ(message({"/no/a", "/no/b"}, {0.5, 0.2, 0.3}), "3 weights for 2 modules");
  EXPECT_NE(message({"/no/a"}, {}).find("/no/a"), std::string::npos);  // loaded as is
}

}  // namespace
}  // namespace lorahub

// Composition as the reference does it (Σ wA, Σ wB, cross terms), merged == unmerged, module
// validation, and the module-list helpers.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "core/error.h"
#include "lora/compose.h"
#include "lora/module_set.h"
#include "models/linear.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;
namespace fs = std::filesystem;

// A module with one target layer "enc.q" (in 6, out 4, rank 2), scale 2 (alpha 4 / r 2).
LoraModule make_module(const std::string& path, unsigned seed, int64_t rank = 2) {
  std::mt19937 rng(seed);
  LoraModule m;
  m.path = path;
  m.config.r = rank;
  m.config.lora_alpha = 4;
  m.config.target_modules = {"q"};
  m.config.base_model_name_or_path = "tiny-t5";
  for (bool is_a : {true, false}) {
    LoraTensor t;
    t.layer = "enc.q";
    t.is_a = is_a;
    t.key = std::string("base_model.model.enc.q.lora_") + (is_a ? "A" : "B") + ".weight";
    t.shape = is_a ? Shape{rank, 6} : Shape{4, rank};
    t.scale = 4.0f / rank;
    t.values = random_values(static_cast<size_t>(shape_numel(t.shape)), rng, 0.5f);
    m.tensors.push_back(std::move(t));
  }
  return m;
}

ModuleSet make_set() {
  return ModuleSet::from_modules(
      {make_module("m1", 1), make_module("m2", 2), make_module("m3", 3)});
}

// The dense update scale · B · A of a delta, [out, in].
std::vector<double> dense_update(const LoraDelta& d) {
  std::vector<double> u(d.out * d.in, 0.0);
  for (int64_t o = 0; o < d.out; ++o)
    for (int64_t i = 0; i < d.in; ++i)
      for (int64_t k = 0; k < d.r; ++k)
        u[o * d.in + i] += d.scale * d.B[o * d.r + k] * d.A[k * d.in + i];
  return u;
}

TEST(Compose, SumsAAndBSeparatelyWithCrossTerms) {
  const ModuleSet set = make_set();
  const std::vector<double> w{0.5, -1.2, 0.3};
  const LoraMap map = compose(set, w);
  ASSERT_EQ(map.size(), 1u);
  const LoraDelta& d = map.at("enc.q").at(0);
  EXPECT_EQ(d.r, 2);
  EXPECT_EQ(d.in, 6);
  EXPECT_EQ(d.out, 4);
  EXPECT_FLOAT_EQ(d.scale, 2.0f);
  for (size_t k = 0; k < d.A.size(); ++k) {
    double expect = 0;
    for (size_t i = 0; i < 3; ++i) expect += w[i] * set[i].tensors[0].values[k];
    EXPECT_NEAR(d.A[k], expect, 1e-6);
  }
  // scale·(ΣwB)(ΣwA) is not Σ w·scale·B·A: the cross terms make a real difference.
  const std::vector<double> composed = dense_update(d);
  std::vector<double> separate(composed.size(), 0.0);
  for (size_t i = 0; i < 3; ++i) {
    const LoraMap single = to_lora_map(set[i]);
    const std::vector<double> ui = dense_update(single.at("enc.q").at(0));
    for (size_t k = 0; k < ui.size(); ++k) separate[k] += w[i] * ui[k];
  }
  double diff = 0;
  for (size_t k = 0; k < composed.size(); ++k)
    diff = std::max(diff, std::abs(composed[k] - separate[k]));
  EXPECT_GT(diff, 1e-2);
}

TEST(Compose, Bf16PoolComposesWithinRoundingOfF32) {
  const ModuleSet f32 = make_set();
  const ModuleSet bf16 = ModuleSet::from_modules(
      {make_module("m1", 1), make_module("m2", 2), make_module("m3", 3)}, /*bf16=*/true);
  EXPECT_TRUE(bf16[0].tensors[0].values.empty());
  const std::vector<double> w = {0.7, -1.2, 0.4};
  const LoraModule a = compose_module(f32, w), b = compose_module(bf16, w);
  for (size_t t = 0; t < a.tensors.size(); ++t) {
    ASSERT_EQ(a.tensors[t].values.size(), b.tensors[t].values.size());
    for (size_t k = 0; k < a.tensors[t].values.size(); ++k)  // 3 terms, each within 2^-8 relative
      EXPECT_NEAR(a.tensors[t].values[k], b.tensors[t].values[k], 0.02) << t << "," << k;
  }
}

TEST(Compose, ZeroWeightsGiveZeroUpdate) {
  const LoraMap map = compose(make_set(), {0, 0, 0});
  for (float v : map.at("enc.q")[0].A) EXPECT_EQ(v, 0.0f);
}

TEST(Compose, MergedEqualsUnmerged) {
  std::mt19937 rng(9);
  Linear layer;
  layer.name = "enc.q";
  layer.in = 6;
  layer.out = 4;
  layer.weight = random_values(24, rng, 0.5f);
  const std::vector<float> x = random_values(3 * 6, rng, 0.5f);
  const LoraMap map = compose(make_set(), {0.7, 1.1, -0.4});

  std::vector<float> unmerged(3 * 4), merged(3 * 4), base(3 * 4);
  linear_forward(layer, x.data(), 3, base.data());
  const BoundLora bound = bind_to_layer(layer, map);
  linear_forward(layer, x.data(), 3, unmerged.data(), {{0, 3, &bound}});
  merge_lora_into(layer, map);
  linear_forward(layer, x.data(), 3, merged.data());
  double max_diff = 0, moved = 0;
  for (size_t k = 0; k < merged.size(); ++k) {
    max_diff = std::max(max_diff, static_cast<double>(std::abs(merged[k] - unmerged[k])));
    moved = std::max(moved, static_cast<double>(std::abs(merged[k] - base[k])));
  }
  EXPECT_LT(max_diff, 1e-5);
  EXPECT_GT(moved, 1e-2);  // the adapter did change the output
}

TEST(Compose, SavedAdapterLoadsBack) {
  const fs::path dir = fs::temp_directory_path() / "lorahub_compose_roundtrip";
  fs::remove_all(dir);
  const LoraModule composed = compose_module(make_set(), {0.2, 0.4, -0.6});
  save_peft_adapter(dir.string(), composed.config, module_state_dict(composed));
  const LoraModule back = load_lora_module(dir.string());
  ASSERT_EQ(back.tensors.size(), composed.tensors.size());
  for (size_t t = 0; t < back.tensors.size(); ++t) {
    EXPECT_EQ(back.tensors[t].key, composed.tensors[t].key);
    EXPECT_EQ(back.tensors[t].values, composed.tensors[t].values);
    EXPECT_FLOAT_EQ(back.tensors[t].scale, 2.0f);
  }
  fs::remove_all(dir);
}

TEST(ModuleList, SamplesWithoutReplacementDeterministically) {
  std::vector<std::string> paths;
  for (int i = 0; i < 30; ++i) paths.push_back("m" + std::to_string(i));
  const auto a = sample_modules(paths, 20, 5);
  EXPECT_EQ(a, sample_modules(paths, 20, 5));
  EXPECT_NE(a, sample_modules(paths, 20, 6));
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), 20u);
  EXPECT_EQ(sample_modules(paths, 0, 5), paths);
  EXPECT_EQ(sample_modules(paths, 40, 5), paths);
}

TEST(ModuleList, ReadsRelativePathsSkippingCommentsAndBlanks) {
  const fs::path dir = fs::temp_directory_path() / "lorahub_module_list";
  fs::create_directories(dir);
  const fs::path list = dir / "modules.txt";
  std::ofstream(list) << "# pool\n\nsub/a\n  /abs/b  \r\n";
  const auto paths = read_module_list(list.string());
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], (dir / "sub/a").string());
  EXPECT_EQ(paths[1], "/abs/b");
  fs::remove_all(dir);
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& fragments) {
  try {
    f();
    FAIL() << "no error";
  } catch (const Error& e) {
    for (const auto& s : fragments)
      EXPECT_NE(std::string(e.what()).find(s), std::string::npos) << e.what();
  }
}

TEST(ComposeMalformed, RefusesIncompatibleModules) {
  expect_error([] { ModuleSet::from_modules({}); }, {"no LoRA modules"});
  expect_error(
      [] {
        ModuleSet::from_modules({make_module("m1", 1), make_module("bad", 2, 3)});
      },
      {"bad", "rank 3"});
  LoraModule other_base = make_module("elsewhere", 2);
  other_base.config.base_model_name_or_path = "t5-large";
  expect_error(
      [&] {
        ModuleSet::from_modules({make_module("m1", 1), other_base});
      },
      {"elsewhere", "t5-large"});
  LoraModule renamed = make_module("renamed", 2);
  renamed.tensors[1].key = "base_model.model.enc.k.lora_B.weight";
  expect_error(
      [&] {
        ModuleSet::from_modules({make_module("m1", 1), renamed});
      },
      {"renamed", "enc.k.lora_B"});
  LoraModule shorter = make_module("shorter", 2);
  shorter.tensors.pop_back();
  expect_error(
      [&] {
        ModuleSet::from_modules({make_module("m1", 1), shorter});
      },
      {"shorter", "enc.q.lora_B", "missing"});
  LoraModule targets = make_module("targets", 2);
  targets.config.target_modules = {"q", "v"};
  expect_error(
      [&] {
        ModuleSet::from_modules({make_module("m1", 1), targets});
      },
      {"targets", "q,v"});
}

TEST(ComposeMalformed, RefusesBadWeights) {
  const ModuleSet set = make_set();
  expect_error([&] { compose(set, {0.1, 0.2}); }, {"2 weights for 3 modules"});
  expect_error([&] { compose(set, {0.1, std::nan(""), 0.3}); }, {"weight 1", "nan"});
  expect_error([&] { compose(set, {0.1, INFINITY, 0.3}); }, {"weight 1", "inf"});
}

TEST(ComposeMalformed, MissingDirectoryIsNamed) {
  expect_error([] { ModuleSet::load({"/nonexistent/adapter"}); }, {"/nonexistent/adapter"});
  expect_error([] { read_module_list("/nonexistent/list.txt"); }, {"/nonexistent/list.txt"});
}

}  // namespace
}  // namespace lorahub

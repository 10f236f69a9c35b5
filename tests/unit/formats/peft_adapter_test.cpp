#include "formats/peft_adapter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/mapped_file.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace lorahub {
namespace {
using testing::expect_error;
using testing::ScratchDir;
using testing::write_bytes;

const std::string kQ = "base_model.model.encoder.block.0.layer.0.SelfAttention.q";
const std::string kV = "base_model.model.encoder.block.0.layer.0.SelfAttention.v";

Tensor filled(Shape shape, float start) {
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = start + static_cast<float>(i);
  return Tensor::from_f32(std::move(v), std::move(shape));
}

// A rank-2 adapter on q and rank-4 (via rank_pattern) on v, d_model 3.
StateDict two_targets() {
  StateDict w;
  w.add(kQ + ".lora_A.weight", filled({2, 3}, 0));
  w.add(kQ + ".lora_B.weight", filled({3, 2}, 10));
  w.add(kV + ".lora_A.weight", filled({4, 3}, 20));
  w.add(kV + ".lora_B.weight", filled({3, 4}, 30));
  return w;
}

AdapterConfig config_with_patterns() {
  AdapterConfig c;
  c.r = 2;
  c.lora_alpha = 16;
  c.target_modules = {"q", "v"};
  c.task_type = "SEQ_2_SEQ_LM";
  c.base_model_name_or_path = "google/flan-t5-large";
  c.rank_pattern = {{"v", 4}};
  c.alpha_pattern = {{"SelfAttention.v", 2.0}};
  return c;
}

TEST(PeftAdapter, SaveLoadRoundTripWithPatterns) {
  ScratchDir dir;
  save_peft_adapter(dir.file("a"), config_with_patterns(), two_targets());
  const PeftAdapter a = load_peft_adapter(dir.file("a"));
  EXPECT_EQ(a.config.r, 2);
  EXPECT_EQ(a.config.lora_alpha, 16);
  EXPECT_EQ(a.config.target_modules, (std::vector<std::string>{"q", "v"}));
  EXPECT_EQ(a.config.base_model_name_or_path, "google/flan-t5-large");
  ASSERT_EQ(a.targets.size(), 2u);
  EXPECT_EQ(a.targets[0].module, "encoder.block.0.layer.0.SelfAttention.q");
  EXPECT_DOUBLE_EQ(a.targets[0].scaling, 16.0 / 2);
  EXPECT_DOUBLE_EQ(a.targets[1].scaling, 2.0 / 4);  // both patterns apply to v
  EXPECT_EQ(a.targets[1].b.to_f32(), two_targets().get(kV + ".lora_B.weight").to_f32());
}

TEST(PeftAdapter, RsLoraScalesBySqrtR) {
  AdapterConfig c;
  c.r = 16;
  c.lora_alpha = 8;
  c.use_rslora = true;
  EXPECT_DOUBLE_EQ(c.scaling_for("x.q"), 8.0 / 4.0);
  c.use_rslora = false;
  EXPECT_DOUBLE_EQ(c.scaling_for("x.q"), 0.5);
}

TEST(PeftAdapter, PatternMatchesWholeNameComponentsOnly) {
  AdapterConfig c;
  c.r = 8;
  c.rank_pattern = {{"q", 4}};
  EXPECT_EQ(c.rank_for("encoder.block.0.layer.0.SelfAttention.q"), 4);
  EXPECT_EQ(c.rank_for("model.layers.0.self_attn.q_proj"), 8);  // "q" is not a suffix component
}

TEST(PeftAdapter, ParsesRegexTargetsAndKeepsUnknownFields) {
  const auto c = parse_adapter_config(
      R"({"r": 4, "lora_alpha": 32.0, "target_modules": ".*\\.(q|v)$", "lora_dropout": 0.1,
          "peft_type": "LORA", "modules_to_save": null})",
      "cfg.json");
  EXPECT_EQ(c.target_modules_regex, ".*\\.(q|v)$");
  EXPECT_TRUE(c.target_modules.empty());
  const auto again = parse_adapter_config(adapter_config_to_json(c), "again.json");
  EXPECT_EQ(again.raw.at("lora_dropout"), 0.1);
  EXPECT_EQ(again.raw.at("lora_alpha"), 32);
  EXPECT_EQ(again.target_modules_regex, c.target_modules_regex);
}

TEST(PeftAdapter, FallsBackToAdapterModelBin) {
  // Weights files are recognised by content (zip = torch.save, else safetensors); the real
  // torch.save adapter_model.bin is covered by tests/parity/test_formats.py.
  ScratchDir dir;
  save_peft_adapter(dir.file("a"), config_with_patterns(), two_targets());
  std::filesystem::rename(dir.file("a/adapter_model.safetensors"), dir.file("a/adapter_model.bin"));
  const PeftAdapter a = load_peft_adapter(dir.file("a"));
  EXPECT_EQ(a.weights.source(), dir.file("a/adapter_model.bin"));
  EXPECT_EQ(a.targets.size(), 2u);
}

class PeftAdapterMalformed : public ::testing::Test {
 protected:
  // An adapter dir with the given config text and weights.
  std::string make(const std::string& config, const StateDict& weights) {
    const std::string d = dir_.file("bad");
    std::filesystem::create_directories(d);
    write_bytes(d + "/adapter_config.json", config);
    if (!weights.empty()) save_safetensors(d + "/adapter_model.safetensors", weights);
    return d;
  }
  ScratchDir dir_;
};

TEST_F(PeftAdapterMalformed, MissingR) {
  const auto d = make(R"({"lora_alpha": 16, "target_modules": ["q"]})", two_targets());
  expect_error([&] { load_peft_adapter(d); }, {"adapter_config.json", "missing field 'r'"});
}

TEST_F(PeftAdapterMalformed, WrongTypes) {
  expect_error([] { parse_adapter_config(R"({"r": "8"})", "c.json"); },
               {"c.json", "field 'r' must be an integer, got string"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "target_modules": 5})", "c.json"); },
               {"'target_modules' must be a list of strings"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "use_rslora": "yes"})", "c.json"); },
               {"'use_rslora' must be true or false"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "rank_pattern": {"q": "x"}})", "c.json"); },
               {"rank_pattern['q'] must be a positive integer"});
  expect_error([] { parse_adapter_config(R"({"r": 0})", "c.json"); }, {"'r' must be positive"});
  expect_error([] { parse_adapter_config(R"({"r": 1e999})", "c.json"); }, {"invalid JSON"});
  expect_error([] { parse_adapter_config(R"({"r": 99999999999999999999999})", "c.json"); },
               {"must be an integer"});
  expect_error([] { parse_adapter_config("[1]", "c.json"); }, {"must hold a JSON object"});
  expect_error([] { parse_adapter_config(std::string(5000, '{'), "c.json"); }, {"nested deeper"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "target_modules": "(q"})", "c.json"); },
               {"invalid regular expression"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "peft_type": "IA3"})", "c.json"); },
               {"peft_type 'IA3' is not supported"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "use_dora": true})", "c.json"); }, {"DoRA"});
}

TEST_F(PeftAdapterMalformed, NoWeights) {
  const auto d = make(R"({"r": 2})", StateDict());
  expect_error([&] { load_peft_adapter(d); }, {d, "no adapter weights"});
}

TEST_F(PeftAdapterMalformed, NoConfig) {
  std::filesystem::create_directories(dir_.file("empty"));
  expect_error([&] { load_peft_adapter(dir_.file("empty")); }, {"no adapter_config.json"});
  expect_error([&] { load_peft_adapter(dir_.file("nothing")); }, {"not a directory"});
}

TEST_F(PeftAdapterMalformed, UnpairedAndMisshapenTensors) {
  StateDict only_a;
  only_a.add(kQ + ".lora_A.weight", filled({2, 3}, 0));
  expect_error([&] { load_peft_adapter(make(R"({"r": 2})", only_a)); },
               {"adapter_model.safetensors", "has no matching", "lora_B"});
  expect_error([&] { load_peft_adapter(make(R"({"r": 3})", two_targets())); },
               {"disagree with r = 3"});
  StateDict none;
  none.add("base_model.model.lm_head.weight", filled({2, 2}, 0));
  expect_error([&] { load_peft_adapter(make(R"({"r": 2})", none)); }, {"no lora_A/lora_B"});
}

}  // namespace
}  // namespace lorahub

namespace lorahub {
namespace {

// PEFT's get_pattern_key: re.match(rf"(.*\.)?({key})$", name); the first key in file order.
TEST(PeftAdapter, PatternsMatchLikePeftInFileOrder) {
  const std::string m = "encoder.block.0.layer.0.SelfAttention.q";
  EXPECT_TRUE(peft_pattern_matches("q", m));
  EXPECT_TRUE(peft_pattern_matches("SelfAttention.q", m));
  EXPECT_TRUE(peft_pattern_matches(R"(block\.\d+\.layer\.0\.SelfAttention\.(q|v))", m));
  EXPECT_TRUE(peft_pattern_matches(".*q", m));
  EXPECT_FALSE(peft_pattern_matches("Attention.q", m));    // only at a '.' boundary
  EXPECT_FALSE(peft_pattern_matches("SelfAttention", m));  // anchored at the end
  EXPECT_FALSE(peft_pattern_matches("q", "encoder.block.0.layer.0.SelfAttention.qq"));
  const AdapterConfig c = parse_adapter_config(
      R"({"r": 8, "rank_pattern": {"q": 2, "SelfAttention.q": 3, "v": 4}})", "c.json");
  EXPECT_EQ(c.rank_for(m), 2);  // "q" comes first in the file, though it sorts last
  EXPECT_EQ(c.rank_for("encoder.block.0.layer.0.SelfAttention.k"), 8);
}

TEST(PeftPatternMalformed, HostilePatternsAreLinearAndBounded) {
  // (a|aa)*c backtracks ~1.6^n in a backtracking engine; RE2 answers at once.
  EXPECT_FALSE(peft_pattern_matches("(a|aa)*c", std::string(1000, 'a')));
  expect_error([] { peft_pattern_matches("(a|b)*q", "x." + std::string(100000, 'a')); },
               {"module name", "longer than"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "rank_pattern": {"(?=q)q": 2}})", "c.json"); },
               {"c.json", "rank_pattern", "invalid regular expression"});
  expect_error(
      [] {
        parse_adapter_config(
            R"({"r": 8, "alpha_pattern": {")" + std::string(2000, 'a') + R"(": 2}})", "c.json");
      },
      {"alpha_pattern", "longer than"});
  expect_error([] { parse_adapter_config(R"({"r": 8, "target_modules": "(q"})", "c.json"); },
               {"target_modules", "invalid regular expression"});
}

TEST(PeftConfigMalformed, NonAsciiValuesAreQuotedWithoutCuttingACharacter) {
  std::string value;
  for (int i = 0; i < 60; ++i) value += "\xc3\xa9";  // é
  try {
    parse_adapter_config(R"({"r": ")" + value + R"("})", "c.json");
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("field 'r' must be an integer"), std::string::npos) << what;
    EXPECT_EQ(what.find("\xef\xbf\xbd"), std::string::npos) << what;  // nothing was cut
  }
}

}  // namespace
}  // namespace lorahub

#include "formats/hf_config.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace lorahub {
namespace {
using testing::expect_error;

const char* kConfig = R"({"d_model": 512, "layer_norm_epsilon": 1e-06, "is_gated_act": true,
  "feed_forward_proj": "gated-gelu", "num_heads": 8.0, "architectures": ["T5ForConditionalGeneration"],
  "pad_token_id": null})";

TEST(HfConfig, TypedGettersAndDefaults) {
  const auto c = HfConfig::parse(kConfig, "config.json");
  EXPECT_EQ(c.get_int("d_model"), 512);
  EXPECT_EQ(c.get_int("num_heads"), 8);  // integral float accepted
  EXPECT_DOUBLE_EQ(c.get_double("layer_norm_epsilon"), 1e-6);
  EXPECT_DOUBLE_EQ(c.get_double("d_model"), 512.0);
  EXPECT_TRUE(c.get_bool("is_gated_act"));
  EXPECT_EQ(c.get_string("feed_forward_proj"), "gated-gelu");
  EXPECT_EQ(c.get_string_list("architectures").at(0), "T5ForConditionalGeneration");
  EXPECT_EQ(c.get_int_or("pad_token_id", 0), 0);  // null counts as absent
  EXPECT_EQ(c.get_int_or("vocab_size", 32128), 32128);
  EXPECT_FALSE(c.has("pad_token_id"));
}

TEST(HfConfigMalformed, NamesFileAndField) {
  const auto c = HfConfig::parse(kConfig, "dir/config.json");
  expect_error([&] { c.get_int("vocab_size"); }, {"dir/config.json", "missing field 'vocab_size'"});
  expect_error([&] { c.get_int("feed_forward_proj"); },
               {"dir/config.json", "'feed_forward_proj' must be an integer, got string"});
  expect_error([&] { c.get_int("layer_norm_epsilon"); }, {"must be an integer"});
  expect_error([&] { c.get_string("d_model"); }, {"'d_model' must be a string"});
  expect_error([&] { c.get_bool_or("d_model", false); }, {"must be true or false"});
  expect_error([&] { c.get_string_list("d_model"); }, {"list of strings"});
  expect_error([] { HfConfig::parse("{\"a\": }", "x.json"); }, {"x.json", "invalid JSON"});
  expect_error([] { HfConfig::parse("\"text\"", "x.json"); }, {"must hold a JSON object"});
  expect_error([] { HfConfig::load("/nonexistent-dir/config.json"); }, {"cannot open"});
}

}  // namespace
}  // namespace lorahub

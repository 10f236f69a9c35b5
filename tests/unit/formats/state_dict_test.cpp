#include "formats/state_dict.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "formats/safetensors.h"
#include "test_util.h"

namespace lorahub {
namespace {
using testing::expect_error;
using testing::ScratchDir;
using testing::write_bytes;

TEST(StateDict, LoadsSingleAndShardedSafetensors) {
  ScratchDir dir;
  std::filesystem::create_directories(dir.file("one"));
  std::filesystem::create_directories(dir.file("sharded"));
  const Tensor a = Tensor::from_f32({1, 2}, {2});
  const Tensor b = Tensor::from_f32({3}, {1});
  write_safetensors(dir.file("one/model.safetensors"), {{"a", a}, {"b", b}});
  EXPECT_EQ(load_model_weights(dir.file("one")).names(), (std::vector<std::string>{"a", "b"}));

  write_safetensors(dir.file("sharded/s-1.safetensors"), {{"a", a}});
  write_safetensors(dir.file("sharded/s-2.safetensors"), {{"b", b}});
  write_bytes(
      dir.file("sharded/model.safetensors.index.json"),
      R"({"metadata": {}, "weight_map": {"a": "s-1.safetensors", "b": "s-2.safetensors"}})");
  const StateDict d = load_model_weights(dir.file("sharded"));
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.get("b").to_f32(), std::vector<float>{3});
}

TEST(StateDictMalformed, BadDirectoriesAndIndexes) {
  ScratchDir dir;
  expect_error([&] { load_model_weights(dir.file("")); }, {"no model weights"});
  write_safetensors(dir.file("s-1.safetensors"), {{"a", Tensor::from_f32({1}, {1})}});
  const auto index = dir.file("model.safetensors.index.json");
  write_bytes(index, R"({"weight_map": {"a": "../s-1.safetensors"}})");
  expect_error([&] { load_model_weights(dir.file("")); }, {index, "plain file name"});
  write_bytes(index, R"({"weight_map": {"zz": "s-1.safetensors"}})");
  expect_error([&] { load_model_weights(dir.file("")); }, {"'zz'", "does not contain it"});
  write_bytes(index, R"({"weight_map": {"a": "missing.safetensors"}})");
  expect_error([&] { load_model_weights(dir.file("")); }, {"missing.safetensors", "cannot open"});
  write_bytes(index, R"({"weight_map": []})");
  expect_error([&] { load_model_weights(dir.file("")); }, {"'weight_map' object"});
}

TEST(StateDictMalformed, DuplicatesAndMissingNames) {
  StateDict d("x.safetensors");
  d.add("a", Tensor::from_f32({1}, {1}));
  expect_error([&] { d.add("a", Tensor::from_f32({1}, {1})); }, {"x.safetensors", "'a'", "twice"});
  expect_error([&] { d.get("b"); }, {"x.safetensors", "no tensor named 'b'"});
}

}  // namespace
}  // namespace lorahub

// The BBH protocol's parts that need no model: flag-free parsing, the cache and its key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "core/error.h"
#include "core/version.h"
#include "eval/answer.h"
#include "eval/bbh_run.h"

namespace lorahub {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("lorahub-bbh-run-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

TEST(BbhRun, MethodsComeInTableOrder) {
  EXPECT_EQ(parse_bbh_methods("uniform,zero-shot"),
            (std::vector<std::string>{"zero-shot", "uniform"}));
  EXPECT_TRUE(bbh_method_is_seeded("lorahub-cmaes"));
  EXPECT_TRUE(bbh_method_is_seeded("uniform"));
  EXPECT_FALSE(bbh_method_is_seeded("best-single"));
}

// Arrow runs only when named: the default is the committed table's six methods.
TEST(BbhRun, ArrowIsOptIn) {
  const std::vector<std::string> six = {"zero-shot",     "icl",     "lorahub-cobyla",
                                        "lorahub-cmaes", "uniform", "best-single"};
  EXPECT_EQ(bbh_default_methods(), six);
  EXPECT_EQ(BbhConfig().methods, six);
  EXPECT_EQ(parse_bbh_methods("arrow,zero-shot"), (std::vector<std::string>{"zero-shot", "arrow"}));
}

TEST(BbhRun, SeedsAreRangesAndLists) {
  EXPECT_EQ(parse_seed_list("1-3,7"), (std::vector<uint64_t>{1, 2, 3, 7}));
  EXPECT_EQ(parse_seed_list("42"), (std::vector<uint64_t>{42}));
}

TEST(BbhRunMalformed, BadListsAreErrorsWithoutFlagNames) {
  for (const char* bad : {"5-1", "x", "1-", "", "1-2000"}) {
    try {
      parse_seed_list(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).find("--"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_bbh_methods("zero-shot,magic"), Error);
  BbhConfig c;
  c.steps = 0;
  EXPECT_THROW(validate(c), Error);
  c = BbhConfig();
  c.loss_mode = "median";
  EXPECT_THROW(validate(c), Error);
}

TEST(BbhRun, AnswerRuleIsTheStopSequences) {
  const DecodeOptions d = answer_decode_options(7);
  EXPECT_EQ(d.max_new_tokens, 7);
  EXPECT_EQ(d.stop, (std::vector<std::string>{"\n\n", "Q:"}));
  EXPECT_EQ(d.sampling.temperature, 0.0f);  // greedy
}

// A model folder and a pool of one module under `dir`, as a protocol configuration.
BbhConfig one_module_config(const TempDir& dir) {
  write(dir.path() / "model" / "config.json", "{}");
  write(dir.path() / "m1" / "adapter_config.json", "{}");
  BbhConfig c;
  c.model_path = (dir.path() / "model").string();
  c.pool = {(dir.path() / "m1").string()};
  return c;
}

// The key names the engine version: a numerical change (a bumped LORAHUB_NUMERICS_REVISION or a
// new PROJECT_VERSION) recomputes instead of reusing a result the old engine made.
TEST(BbhRun, CacheMissesWhenTheEngineVersionChanges) {
  TempDir dir;
  BbhConfig c = one_module_config(dir);
  EXPECT_EQ(bbh_settings(c)["engine"], kEngineVersion);
  const json old_key = bbh_settings(c, "0.1.0+numerics.1");
  const json new_key = bbh_settings(c, "0.1.0+numerics.2");
  EXPECT_NE(old_key, new_key);

  int computed = 0;
  const auto compute = [&] { return json{{"accuracy", ++computed}}; };
  const std::string cache_dir = (dir.path() / "cache").string();
  {
    ResultCache cache(cache_dir, old_key);
    EXPECT_EQ(cache.get_or_compute("navigate.zero-shot", compute)["accuracy"], 1);
    EXPECT_EQ(cache.get_or_compute("navigate.zero-shot", compute)["accuracy"], 1);  // a hit
  }
  EXPECT_EQ(computed, 1);
  ResultCache cache(cache_dir, new_key);
  std::string why;
  const json r = cache.get_or_compute("navigate.zero-shot", compute,
                                      [&](const std::string& line) { why = line; });
  EXPECT_EQ(r["accuracy"], 2);
  EXPECT_EQ(computed, 2);
  EXPECT_NE(why.find("engine: \"0.1.0+numerics.1\" -> \"0.1.0+numerics.2\""), std::string::npos)
      << why;
}

// An explicitly named older engine's results are reused (to rebuild a committed table); an
// unnamed engine's, or a named engine's under other settings, are recomputed.
TEST(BbhRun, CacheReusesOnlyTheNamedEnginesWithOtherwiseEqualSettings) {
  TempDir dir;
  BbhConfig c = one_module_config(dir);
  const json old_key = bbh_settings(c, "0.1.0+numerics.0");
  const json new_key = bbh_settings(c, "0.1.0+numerics.1");
  int computed = 0;
  const auto compute = [&] { return json{{"accuracy", ++computed}}; };
  const auto accuracy = [&](const json& key, std::vector<std::string> reuse) {
    ResultCache cache((dir.path() / "cache").string(), key, std::move(reuse));
    return cache.get_or_compute("navigate.zero-shot", compute)["accuracy"].get<int>();
  };
  ASSERT_EQ(accuracy(old_key, {}), 1);
  EXPECT_EQ(accuracy(new_key, {"0.1.0+numerics.7"}), 2);  // another engine: recomputed
  ASSERT_EQ(accuracy(old_key, {}), 3);                    // (the old engine's result again)
  EXPECT_EQ(accuracy(new_key, {"0.1.0+numerics.0"}), 3);  // the named engine: reused
  c.steps = 20;  // another setting differs: naming the engine does not make it reusable
  EXPECT_EQ(accuracy(bbh_settings(c, "0.1.0+numerics.1"), {"0.1.0+numerics.0"}), 4);
}

TEST(BbhRun, KeyFollowsContentNotPath) {
  TempDir dir;
  write(dir.path() / "a" / "model" / "config.json", "{}");
  write(dir.path() / "b" / "model" / "config.json", "{}");
  BbhConfig c;
  c.model_path = (dir.path() / "a" / "model").string();
  const json a = bbh_settings(c);
  c.model_path = (dir.path() / "b" / "model").string();
  EXPECT_EQ(bbh_settings(c), a);
  write(dir.path() / "b" / "model" / "config.json", "{ }");
  EXPECT_NE(bbh_settings(c), a);
  c.steps = 20;
  EXPECT_NE(differing_settings(a, bbh_settings(c)).find("steps: 40 -> 20"), std::string::npos);
}

// A path's own numerics revision keys that path's runs only: bumping the bf16 or the quantized
// one leaves the f32 path's cache (the BBH tables) valid.
TEST(BbhRun, PathRevisionsKeyOnlyTheirPath) {
  TempDir dir;
  BbhConfig c = one_module_config(dir);
  const json f32 = bbh_settings(c);
  EXPECT_FALSE(f32.contains("bf16_numerics") || f32.contains("quantized_numerics"));
  c.quantized = true;
  const json quantized = bbh_settings(c);
  EXPECT_EQ(quantized["quantized_numerics"], kQuantizedNumericsRevision);
  EXPECT_FALSE(quantized.contains("bf16_numerics"));
  c.quantized = false;
  c.bf16 = true;
  const json bf16 = bbh_settings(c);
  EXPECT_EQ(bf16["bf16_numerics"], kBf16NumericsRevision);
  EXPECT_FALSE(bf16.contains("quantized_numerics"));
}

TEST(BbhRun, MetricIsInTheKeyOnlyWhenNotExact) {
  EXPECT_TRUE(parse_bbh_metric("exact").exact && !parse_bbh_metric("exact").options);
  EXPECT_TRUE(!parse_bbh_metric("option-likelihood").exact &&
              parse_bbh_metric("option-likelihood").options);
  EXPECT_TRUE(parse_bbh_metric("both").exact && parse_bbh_metric("both").options);
  EXPECT_THROW(parse_bbh_metric("acc_norm"), Error);
  TempDir dir;
  BbhConfig c = one_module_config(dir);
  const json exact = bbh_settings(c);
  EXPECT_FALSE(exact.contains("metric"));
  c.metric = "both";
  const json both = bbh_settings(c);
  EXPECT_EQ(both["metric"], "both");
  EXPECT_EQ(both["max_options"], 20);
  EXPECT_NE(differing_settings(exact, both).find("metric"), std::string::npos);
  c.metric = "likelihood";
  EXPECT_THROW(validate(c), Error);
}

}  // namespace
}  // namespace lorahub

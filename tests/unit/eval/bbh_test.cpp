// Our BBH split on the real data (../shared/data/bbh) and on broken copies.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "eval/bbh.h"

namespace lorahub {
namespace {
namespace fs = std::filesystem;

const std::string kData = std::string(LORAHUB_SOURCE_DIR) + "/../shared/data/bbh";

TEST(Bbh, Sha256KnownAnswer) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Bbh, SplitsEveryTaskIntoFiveFewShotAndTheRest) {
  if (!fs::exists(kData)) GTEST_SKIP() << "no BBH data at " << kData;
  const auto names = bbh_task_names(kData);
  EXPECT_EQ(names.size(), 20u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const std::string& name : names) {
    const BbhTask task = load_bbh_task(kData, name);
    EXPECT_EQ(task.few_shot.size(), 5u) << name;
    EXPECT_GE(task.test.size(), 173u) << name;
    EXPECT_EQ(task.few_shot[0].prompt.rfind(task.description + "\n\nQ: ", 0), 0u) << name;
    EXPECT_EQ(task.few_shot[0].prompt.substr(task.few_shot[0].prompt.size() - 3), "\nA:");
  }
}

TEST(Bbh, DateUnderstandingDescriptionAndDeterminism) {
  if (!fs::exists(kData)) GTEST_SKIP() << "no BBH data at " << kData;
  const BbhTask a = load_bbh_task(kData, "date_understanding");
  EXPECT_EQ(a.description, "Infer the date from context.");
  const BbhTask b = load_bbh_task(kData, "date_understanding");
  ASSERT_EQ(a.few_shot.size(), b.few_shot.size());
  for (size_t i = 0; i < a.few_shot.size(); ++i)
    EXPECT_EQ(a.few_shot[i].prompt, b.few_shot[i].prompt);
}

class BbhMalformed : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / "lorahub_bbh_malformed";
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "tasks");
    fs::create_directories(dir_ / "task-prompts");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  std::string error_of(const std::string& task) {
    try {
      load_bbh_task(dir_.string(), task);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir_;
};

TEST_F(BbhMalformed, NamesTheProblem) {
  EXPECT_THROW(bbh_task_names(dir_.string()), Error);  // no task files
  write("task-prompts/t.txt", "canary\n");
  write("tasks/t.json", R"({"examples": []})");
  EXPECT_NE(error_of("t").find("description"), std::string::npos);
  write("task-prompts/t.txt", "canary\n-----\nDo it.\n");
  EXPECT_NE(error_of("t").find("need more than 5"), std::string::npos);
  write("tasks/t.json", R"({"examples": [{"input": 3, "target": "x"}]})");
  EXPECT_NE(error_of("t").find("examples[0]"), std::string::npos);
  write("tasks/t.json", R"({"examples": )");
  EXPECT_NE(error_of("t").find("t.json"), std::string::npos);
  EXPECT_NE(error_of("missing").find("missing"), std::string::npos);
}

}  // namespace
}  // namespace lorahub

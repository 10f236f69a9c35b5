// Our BBH split on the real data (../shared/data/bbh) and on broken copies.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "core/error.h"
#include "eval/bbh.h"
#include "formats/digest.h"

namespace lorahub {
namespace {
namespace fs = std::filesystem;

const std::string kData = std::string(LORAHUB_SOURCE_DIR) + "/../shared/data/bbh";

TEST(Bbh, Sha256KnownAnswer) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Missing data is a failure, not a skip: a checkout without ../shared must not pass silently.
#define ASSERT_BBH_DATA() \
  ASSERT_TRUE(fs::is_directory(kData + "/tasks")) << "no BBH data at " << kData

TEST(Bbh, SplitsEveryTaskIntoFiveFewShotAndTheRest) {
  ASSERT_BBH_DATA();
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

// Values printed by Python over the same file: sorted(examples, key=sha256(input).hexdigest()).
TEST(Bbh, DateUnderstandingSplitMatchesPython) {
  ASSERT_BBH_DATA();
  const BbhTask task = load_bbh_task(kData, "date_understanding");
  EXPECT_EQ(task.description, "Infer the date from context.");
  ASSERT_EQ(task.few_shot.size(), 5u);
  EXPECT_EQ(task.few_shot.size() + task.test.size(), 250u);
  const char* first_inputs[] = {"In the US, Thanksgiving is on the fourth Thursday of Novembe",
                                "Jane visits the bookstore on the 16th of each month starting",
                                "Today is Sep 9, 1909. What is the date 24 hours later in MM/",
                                "Jane scheduled 3 apointments with 5 poeple for tomorrow (Tue",
                                "Jane is celebrating the last day of Jan 2012. What is the da"};
  const char* targets[] = {"(F)", "(C)", "(A)", "(C)", "(D)"};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(task.few_shot[i].input.substr(0, 60), first_inputs[i]) << i;
    EXPECT_EQ(task.few_shot[i].target, targets[i]) << i;
    EXPECT_EQ(task.few_shot[i].prompt, bbh_prompt(task.description, task.few_shot[i].input));
  }
  EXPECT_EQ(task.test[0].input.substr(0, 60),
            "Today is the palindrome day of 2020, because the MMDDYYYY fo");
}

// The split on a task we write: inputs ordered by SHA-256 hex digest (echo 092c…, delta 4f4a…,
// golf 625f…, alpha 8ed3…, foxtrot 9533…, charlie b9dd…, bravo f144…), not by file order.
TEST(Bbh, SplitOrdersBySha256OfTheInput) {
  const fs::path dir = fs::temp_directory_path() / "lorahub_bbh_split";
  fs::remove_all(dir);
  fs::create_directories(dir / "tasks");
  fs::create_directories(dir / "task-prompts");
  std::ofstream(dir / "task-prompts/t.txt") << "canary\n-----\nPick a word.\n\nQ: x\nA: y\n";
  std::string examples;
  for (const char* w : {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"})
    examples += std::string(examples.empty() ? "" : ",") + "{\"input\": \"" + w +
                "\", \"target\": \"" + w + "!\"}";
  std::ofstream(dir / "tasks/t.json") << "{\"examples\": [" << examples << "]}";
  const BbhTask task = load_bbh_task(dir.string(), "t");
  fs::remove_all(dir);
  std::vector<std::string> few, test;
  for (const BbhExample& e : task.few_shot) few.push_back(e.input);
  for (const BbhExample& e : task.test) test.push_back(e.input);
  EXPECT_EQ(few, (std::vector<std::string>{"echo", "delta", "golf", "alpha", "foxtrot"}));
  EXPECT_EQ(test, (std::vector<std::string>{"charlie", "bravo"}));
  EXPECT_EQ(task.test[1].target, "bravo!");
  EXPECT_EQ(task.few_shot[0].prompt, "Pick a word.\n\nQ: echo\nA:");
}

std::vector<BbhExample> with_targets(const std::vector<std::string>& targets) {
  std::vector<BbhExample> examples;
  for (const std::string& t : targets) examples.push_back({"q", "p", t});
  return examples;
}

TEST(BbhFloor, AnswersTheFewShotMajorityEverywhere) {
  const auto test = with_targets({"(B)", "(A)", "(B)", "(C)"});
  const MajorityFloor clear =
      few_shot_majority_floor(with_targets({"(B)", "(A)", "(B)", "(C)", "(B)"}), test);
  EXPECT_EQ(clear.answers, (std::vector<std::string>{"(b)"}));
  EXPECT_DOUBLE_EQ(clear.accuracy, 50.0);
  // Counted after the exact-match normalization: "True." and " TRUE" are "true".
  const MajorityFloor normalized = few_shot_majority_floor(
      with_targets({"True.", "false", " TRUE", "False", "true"}), with_targets({"True", "False"}));
  EXPECT_EQ(normalized.answers, (std::vector<std::string>{"true"}));
  EXPECT_DOUBLE_EQ(normalized.accuracy, 50.0);
}

TEST(BbhFloor, ATieIsTheMeanOfTheTiedAnswers) {
  // (A) and (B) twice each: (A) scores 3 of 4, (B) 1 of 4, so the floor is 50 %, not either.
  const MajorityFloor tie =
      few_shot_majority_floor(with_targets({"(A)", "(B)", "(C)", "(B)", "(A)"}),
                              with_targets({"(A)", "(A)", "(A)", "(B)"}));
  EXPECT_EQ(tie.answers, (std::vector<std::string>{"(a)", "(b)"}));
  EXPECT_DOUBLE_EQ(tie.accuracy, 50.0);
  EXPECT_THROW(few_shot_majority_floor({}, with_targets({"x"})), Error);
  EXPECT_THROW(few_shot_majority_floor(with_targets({"x"}), {}), Error);
}

// The values scripts/bbh_analysis.py --constant-answer printed for the committed table (first
// 50 test examples; these tasks have no tie among the few-shot targets).
TEST(BbhFloor, RealTasksMatchThePythonCount) {
  ASSERT_BBH_DATA();
  for (const auto& [name, answer, accuracy] : {std::tuple{"date_understanding", "(c)", 20.0},
                                               {"navigate", "yes", 40.0},
                                               {"salient_translation_error_detection", "(d)", 32.0},
                                               {"object_counting", "16", 2.0}}) {
    const BbhTask task = load_bbh_task(kData, name);
    const std::vector<BbhExample> test(task.test.begin(), task.test.begin() + 50);
    const MajorityFloor floor = few_shot_majority_floor(task.few_shot, test);
    EXPECT_EQ(floor.answers, (std::vector<std::string>{answer})) << name;
    EXPECT_DOUBLE_EQ(floor.accuracy, accuracy) << name;
  }
}

TEST(BbhOptions, DistinctTargetsOrNoneForFreeFormTasks) {
  ASSERT_BBH_DATA();
  EXPECT_EQ(bbh_answer_options(load_bbh_task(kData, "boolean_expressions")),
            (std::vector<std::string>{"False", "True"}));
  EXPECT_EQ(bbh_answer_options(load_bbh_task(kData, "temporal_sequences")),
            (std::vector<std::string>{"(A)", "(B)", "(C)", "(D)"}));
  EXPECT_EQ(bbh_answer_options(load_bbh_task(kData, "object_counting")).size(), 17u);
  EXPECT_EQ(bbh_answer_options(load_bbh_task(kData, "reasoning_about_colored_objects")).size(),
            18u);
  EXPECT_TRUE(bbh_answer_options(load_bbh_task(kData, "dyck_languages")).empty());  // 59
  EXPECT_TRUE(bbh_answer_options(load_bbh_task(kData, "word_sorting")).empty());    // 250
  // Few-shot and test targets both count: a target seen only in the few-shot set is an option.
  BbhTask task;
  task.few_shot = with_targets({"x", "y"});
  task.test = with_targets({"y", "z"});
  EXPECT_EQ(bbh_answer_options(task), (std::vector<std::string>{"x", "y", "z"}));
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

// BIG-Bench Hard with our deterministic split (DESIGN §1 "Our BBH split"): for each task file
// tasks/<task>.json, prompt = "<description>\n\nQ: <input>\nA:" and target = "target", where the
// description is the third line of task-prompts/<task>.txt. Examples are ordered by the SHA-256
// hex digest of their `input` (ties keep file order); the first 5 are the few-shot set, all the
// others the test set.
#pragma once
#include <string>
#include <vector>

namespace lorahub {

struct BbhExample {
  std::string input;   // the question as the task file has it
  std::string prompt;  // bbh_prompt(description, input)
  std::string target;
};

struct BbhTask {
  std::string name;
  std::string description;
  std::vector<BbhExample> few_shot;  // 5
  std::vector<BbhExample> test;      // the rest
};

inline constexpr size_t kBbhFewShot = 5;

// Task names (file stems of data_dir/tasks/*.json), sorted. Throws Error naming data_dir when
// there are none.
std::vector<std::string> bbh_task_names(const std::string& data_dir);

// Loads and splits one task; throws Error naming the file and field at fault.
BbhTask load_bbh_task(const std::string& data_dir, const std::string& name);

std::string bbh_prompt(const std::string& description, const std::string& input);

// The in-context-learning prompt: the description, the few-shot examples as answered Q:/A:
// pairs, then the question, in the same format as bbh_prompt:
// "<description>\n\nQ: <q1>\nA: <t1>\n\n...Q: <input>\nA:".
std::string bbh_icl_prompt(const BbhTask& task, const std::string& input);

// A task with more distinct targets than this is free-form (dyck_languages has 59, word_sorting
// 250: each answer is built from its question, the other questions' answers are no options);
// BBH's multiple-choice and closed-set tasks have at most 18 (object_counting's 17 numbers).
inline constexpr size_t kBbhMaxOptions = 20;

// The answer options of a task for option-likelihood scoring (eval/option_scoring.h): its
// distinct targets over all its examples (few-shot and test), sorted; none (empty) for a
// free-form task.
std::vector<std::string> bbh_answer_options(const BbhTask& task);

// The few-shot-majority floor: what answering every test question with the most frequent target
// of the few-shot examples scores (exact match, eval/metrics.h). A method that has learned only
// the answer format and then repeats one answer lands here, so every result is read against it.
// Targets are counted after normalize_answer; on a tie (2-2-1, or five different targets) the
// floor is the mean accuracy of the tied answers: the expected score of picking one of them at
// random, so no order of the split decides it.
struct MajorityFloor {
  std::vector<std::string> answers;  // the most frequent (normalized) targets, sorted
  double accuracy = 0;               // percent (0-100) on `test`
};
// Throws Error when either set is empty.
MajorityFloor few_shot_majority_floor(const std::vector<BbhExample>& few_shot,
                                      const std::vector<BbhExample>& test);

}  // namespace lorahub

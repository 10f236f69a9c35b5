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

}  // namespace lorahub

#include "eval/bbh.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "eval/metrics.h"
#include "formats/digest.h"
#include "formats/json.h"

namespace lorahub {
namespace fs = std::filesystem;

std::string bbh_prompt(const std::string& description, const std::string& input) {
  return description + "\n\nQ: " + input + "\nA:";
}

std::string bbh_icl_prompt(const BbhTask& task, const std::string& input) {
  std::string prompt = task.description + "\n\n";
  for (const BbhExample& shot : task.few_shot)
    prompt += "Q: " + shot.input + "\nA: " + shot.target + "\n\n";
  return prompt + "Q: " + input + "\nA:";
}

std::vector<std::string> bbh_answer_options(const BbhTask& task) {
  std::set<std::string> targets;
  for (const auto* set : {&task.few_shot, &task.test})
    for (const BbhExample& e : *set) targets.insert(e.target);
  if (targets.size() > kBbhMaxOptions) return {};
  return {targets.begin(), targets.end()};
}

MajorityFloor few_shot_majority_floor(const std::vector<BbhExample>& few_shot,
                                      const std::vector<BbhExample>& test) {
  check(!few_shot.empty() && !test.empty(), "the majority floor needs few-shot and test examples");
  std::map<std::string, size_t> votes;  // sorted by answer: the tied answers come out sorted
  for (const BbhExample& e : few_shot) ++votes[normalize_answer(e.target)];
  size_t most = 0;
  for (const auto& [answer, n] : votes) most = std::max(most, n);
  MajorityFloor floor;
  for (const auto& [answer, n] : votes)
    if (n == most) floor.answers.push_back(answer);
  size_t hits = 0;  // summed over the tied answers
  for (const BbhExample& e : test)
    hits += std::count(floor.answers.begin(), floor.answers.end(), normalize_answer(e.target));
  floor.accuracy =
      100.0 * static_cast<double>(hits) / static_cast<double>(test.size() * floor.answers.size());
  return floor;
}

std::vector<std::string> bbh_task_names(const std::string& data_dir) {
  const fs::path dir = fs::path(data_dir) / "tasks";
  check(fs::is_directory(dir), "{}: no tasks/ folder (expected the BBH data directory)", data_dir);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  check(!names.empty(), "{}: no task files", dir.string());
  return names;
}

namespace {

// The third line of the prompt file: the line after the canary header and its separator.
std::string task_description(const std::string& path) {
  const std::string text = read_text_file(path);
  size_t begin = 0;
  for (int line = 0; line < 2; ++line) {
    begin = text.find('\n', begin);
    check(begin != std::string::npos, "{}: fewer than 3 lines (no task description)", path);
    ++begin;
  }
  size_t end = text.find('\n', begin);
  std::string description = text.substr(begin, end == std::string::npos ? end : end - begin);
  if (!description.empty() && description.back() == '\r') description.pop_back();
  check(!description.empty(), "{}: line 3 (the task description) is empty", path);
  return description;
}

std::string string_field(const nlohmann::json& row, const char* key, const std::string& where) {
  check(row.is_object() && row.contains(key) && row[key].is_string(),
        "{}: field '{}' missing or not a string", where, key);
  return row[key].get<std::string>();
}

}  // namespace

BbhTask load_bbh_task(const std::string& data_dir, const std::string& name) {
  const std::string path = (fs::path(data_dir) / "tasks" / (name + ".json")).string();
  BbhTask task;
  task.name = name;
  task.description =
      task_description((fs::path(data_dir) / "task-prompts" / (name + ".txt")).string());
  const nlohmann::json doc = parse_json(read_text_file(path), path);
  check(doc.is_object() && doc.contains("examples") && doc["examples"].is_array(),
        "{}: missing array 'examples'", path);
  struct Keyed {
    std::string key;
    BbhExample example;
  };
  std::vector<Keyed> rows;
  for (size_t i = 0; i < doc["examples"].size(); ++i) {
    const std::string where = fmt::format("{}: examples[{}]", path, i);
    const auto& row = doc["examples"][i];
    const std::string input = string_field(row, "input", where);
    rows.push_back(
        {sha256_hex(input),
         {input, bbh_prompt(task.description, input), string_field(row, "target", where)}});
  }
  check(rows.size() > kBbhFewShot, "{}: {} examples; need more than {}", path, rows.size(),
        kBbhFewShot);
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Keyed& a, const Keyed& b) { return a.key < b.key; });
  for (size_t i = 0; i < rows.size(); ++i)
    (i < kBbhFewShot ? task.few_shot : task.test).push_back(std::move(rows[i].example));
  return task;
}

}  // namespace lorahub

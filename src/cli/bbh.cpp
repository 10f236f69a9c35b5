// lorahub bbh: the LoraHub BBH protocol (DESIGN §1.7) on our split (eval/bbh.h). Per task:
// zero-shot accuracy of the base model, and for each seed LoraHub learning on the 5 few-shot
// examples with `--sample` modules drawn from the pool, then accuracy on the test set; reported
// as the average and the best over seeds, plus an average row. Writes OUT/results.md and
// OUT/results.json. Every task × method × seed result is cached in OUT/cache/ together with
// the settings that produced it, so an interrupted run resumes where it stopped.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iostream>
#include <numeric>

#include "adapt/learner.h"
#include "cli/command.h"
#include "cli/model_args.h"
#include "cli/model_commands.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "eval/bbh.h"
#include "eval/metrics.h"
#include "formats/json.h"
#include "lora/compose.h"
#include "lora/module_set.h"

namespace lorahub::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct BbhArgs {
  ModelArgs model;
  std::string lora_list, data_dir = "../shared/data/bbh", tasks = "all", seeds = "1-5";
  std::string out = "bbh-results", optimizer = "cobyla", loss_mode = "reference";
  size_t sample = 20;
  int steps = 40, max_test = 0, max_new_tokens = 256, batch_size = 10;
};

// "1-5" -> 1..5; "1,3,7" -> those; both may mix: "1-3,9".
std::vector<uint64_t> parse_seeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    begin = end + 1;
    unsigned long long lo = 0, hi = 0;
    char extra = 0;
    const int n = std::sscanf(item.c_str(), "%llu-%llu%c", &lo, &hi, &extra);
    if (n == 1 && item.find('-') == std::string::npos) hi = lo;
    check((n == 1 && item.find('-') == std::string::npos) || (n == 2 && lo <= hi && hi - lo < 1000),
          "--seeds: '{}' is not a seed or a range like 1-5", item);
    for (auto s = lo; s <= hi; ++s) seeds.push_back(s);
  }
  return seeds;
}

std::vector<std::string> parse_tasks(const std::string& text, const std::string& data_dir) {
  const std::vector<std::string> all = bbh_task_names(data_dir);
  if (text == "all") return all;
  std::vector<std::string> tasks;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string name = text.substr(begin, end - begin);
    begin = end + 1;
    check(std::find(all.begin(), all.end(), name) != all.end(), "--tasks: no task '{}' in {}/tasks",
          name, data_dir);
    tasks.push_back(name);
  }
  return tasks;
}

// A JSON result file under OUT/cache, reused only when it was made with the same settings.
class ResultCache {
 public:
  ResultCache(const std::string& dir, json settings) : dir_(dir), settings_(std::move(settings)) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    check(!ec, "{}: cannot create the cache directory: {}", dir_, ec.message());
  }

  json get_or_compute(const std::string& name, const std::function<json()>& compute) {
    const std::string path = (fs::path(dir_) / (name + ".json")).string();
    if (fs::exists(path)) {
      const json cached = parse_json(read_text_file(path), path);
      if (cached.value("settings", json()) == settings_) return cached["result"];
      fmt::print(stderr, "bbh: {} was made with other settings; recomputing\n", path);
    }
    json result = compute();
    write_file_atomic(path, json{{"settings", settings_}, {"result", result}}.dump(1) + "\n");
    return result;
  }

 private:
  std::string dir_;
  json settings_;
};

struct TaskData {
  std::vector<std::string> prompts, targets;
};

TaskData test_set(const BbhTask& task, int max_test) {
  TaskData d;
  for (const BbhExample& e : task.test) {
    if (max_test > 0 && static_cast<int>(d.prompts.size()) >= max_test) break;
    d.prompts.push_back(e.prompt);
    d.targets.push_back(e.target);
  }
  return d;
}

json evaluate(Model& model, const TaskData& data, const BbhArgs& a) {
  const Generations gen = generate_texts(model, data.prompts, a.max_new_tokens, a.batch_size);
  return {{"accuracy", exact_match_accuracy(gen.texts, data.targets)}, {"predictions", gen.texts}};
}

json run_lorahub(Model& model, const BbhTask& task, const TaskData& data,
                 const std::vector<std::string>& pool, uint64_t seed, const BbhArgs& a) {
  const ModuleSet modules = ModuleSet::load(sample_modules(pool, a.sample, seed));
  std::vector<Example> examples;
  for (const BbhExample& e : task.few_shot)
    examples.push_back(model.make_example(e.prompt, e.target));
  Objective objective(model, modules, std::move(examples),
                      ObjectiveOptions{parse_loss_mode(a.loss_mode)});
  LearnOptions options;
  options.optimizer = a.optimizer;
  options.steps = a.steps;
  options.seed = seed;
  const LearnResult learned = learn(objective, options);
  const LoraMap lora = compose(modules, learned.weights);
  model.set_lora(&lora);  // the unmerged side path: the base model stays reusable
  json result;
  try {
    result = evaluate(model, data, a);
  } catch (...) {
    model.set_lora(nullptr);
    throw;
  }
  model.set_lora(nullptr);
  result["modules"] = modules.paths();
  result["weights"] = learned.weights;
  result["objective"] = learned.objective;
  result["learn_seconds"] = learned.seconds;
  return result;
}

struct Row {
  std::string task;
  double zero_shot = 0, average = 0, best = 0;
  std::vector<double> per_seed;
};

std::string markdown(const std::vector<Row>& rows, const Row& mean, size_t seeds) {
  std::string md = fmt::format(
      "| task | zero-shot | LoraHub avg ({} seeds) | LoraHub best |\n|---|---:|---:|---:|\n",
      seeds);
  for (const Row& r : rows)
    md +=
        fmt::format("| {} | {:.1f} | {:.1f} | {:.1f} |\n", r.task, r.zero_shot, r.average, r.best);
  md += fmt::format("| **average** | **{:.1f}** | **{:.1f}** | **{:.1f}** |\n", mean.zero_shot,
                    mean.average, mean.best);
  return md;
}

json settings_json(const BbhArgs& a, const std::vector<std::string>& pool) {
  return {{"model", fs::absolute(a.model.model).lexically_normal().string()},
          {"pool", pool},
          {"sample", a.sample},
          {"steps", a.steps},
          {"optimizer", a.optimizer},
          {"loss_mode", a.loss_mode},
          {"max_test", a.max_test},
          {"max_new_tokens", a.max_new_tokens}};
}

void run(const BbhArgs& a) {
  check(a.steps >= 1, "--steps must be at least 1, got {}", a.steps);
  check(a.max_test >= 0, "--max-test must be >= 0, got {}", a.max_test);
  check(a.batch_size >= 1 && a.max_new_tokens >= 1,
        "--batch-size and --max-new-tokens must be >= 1");
  parse_loss_mode(a.loss_mode);
  const std::vector<uint64_t> seeds = parse_seeds(a.seeds);
  const std::vector<std::string> tasks = parse_tasks(a.tasks, a.data_dir);
  const std::vector<std::string> pool = read_module_list(a.lora_list);
  ResultCache cache((fs::path(a.out) / "cache").string(), settings_json(a, pool));
  auto model = a.model.load();

  std::vector<Row> rows;
  json per_task = json::array();
  for (const std::string& name : tasks) {
    const BbhTask task = load_bbh_task(a.data_dir, name);
    const TaskData data = test_set(task, a.max_test);
    fmt::print(stderr, "bbh: {} ({} test examples)\n", name, data.prompts.size());
    Row row{name};
    row.zero_shot = cache.get_or_compute(name + ".zero-shot",
                                         [&] { return evaluate(*model, data, a); })["accuracy"];
    json seed_results = json::array();
    for (uint64_t seed : seeds) {
      const json r = cache.get_or_compute(fmt::format("{}.lorahub.seed{}", name, seed), [&] {
        return run_lorahub(*model, task, data, pool, seed, a);
      });
      row.per_seed.push_back(r["accuracy"]);
      seed_results.push_back({{"seed", seed},
                              {"accuracy", r["accuracy"]},
                              {"weights", r["weights"]},
                              {"objective", r["objective"]}});
    }
    row.average = std::accumulate(row.per_seed.begin(), row.per_seed.end(), 0.0) / seeds.size();
    row.best = *std::max_element(row.per_seed.begin(), row.per_seed.end());
    per_task.push_back({{"task", name},
                        {"test_examples", data.prompts.size()},
                        {"zero_shot", row.zero_shot},
                        {"lorahub_average", row.average},
                        {"lorahub_best", row.best},
                        {"seeds", seed_results}});
    rows.push_back(std::move(row));
  }
  Row mean{"average"};
  for (const Row& r : rows) {
    mean.zero_shot += r.zero_shot / rows.size();
    mean.average += r.average / rows.size();
    mean.best += r.best / rows.size();
  }
  const std::string md = markdown(rows, mean, seeds.size());
  write_file_atomic((fs::path(a.out) / "results.md").string(), md);
  const json summary{{"settings", settings_json(a, pool)},
                     {"seeds", seeds},
                     {"tasks", per_task},
                     {"average",
                      {{"zero_shot", mean.zero_shot},
                       {"lorahub_average", mean.average},
                       {"lorahub_best", mean.best}}}};
  write_file_atomic((fs::path(a.out) / "results.json").string(), summary.dump(2) + "\n");
  std::cout << md;
}

const Registrar reg("bbh", 60, [](CLI::App& app) {
  auto a = std::make_shared<BbhArgs>();
  auto* cmd = app.add_subcommand("bbh", "BIG-Bench Hard: zero-shot vs LoraHub (our split)");
  cmd->add_option("--model", a->model.model, "HF model directory")->required();
  cmd->add_option("--threads", a->model.threads, "Compute threads (0 = all cores)");
  cmd->add_option("--lora-list", a->lora_list, "The module pool: one adapter directory per line")
      ->required();
  cmd->add_option("--data-dir", a->data_dir, "BBH data (tasks/, task-prompts/)")
      ->capture_default_str();
  cmd->add_option("--tasks", a->tasks, "all, or task names separated by commas")
      ->capture_default_str();
  cmd->add_option("--seeds", a->seeds, "Seeds: a range 1-5 or a list 1,2,3")->capture_default_str();
  cmd->add_option("--sample", a->sample, "Modules drawn from the pool per seed")
      ->capture_default_str();
  cmd->add_option("--steps", a->steps, "Objective evaluations per seed")->capture_default_str();
  cmd->add_option("--optimizer", a->optimizer, "cobyla, bobyqa, cmaes or oneplusone")
      ->capture_default_str();
  cmd->add_option("--loss-mode", a->loss_mode, "reference or example-mean")->capture_default_str();
  cmd->add_option("--max-test", a->max_test, "Test examples per task (0 = all)")
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Generation length limit")
      ->capture_default_str();
  cmd->add_option("--batch-size", a->batch_size, "Generation batch size")->capture_default_str();
  cmd->add_option("--out", a->out, "Results folder (results.md, results.json, cache/)")
      ->capture_default_str();
  cmd->callback([a] { run(*a); });
});

}  // namespace
}  // namespace lorahub::cli

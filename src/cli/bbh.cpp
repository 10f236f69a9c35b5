// lorahub bbh: the LoraHub BBH protocol (DESIGN §1.7) on our split (eval/bbh.h), with the
// paper's baselines. Methods (--methods), per task:
//   zero-shot       the base model on the bare prompt
//   icl             5-shot in-context learning: the few-shot examples answered in the prompt
//   lorahub-cobyla  per seed: `--sample` modules drawn from the pool, weights learned on the 5
//   lorahub-cmaes   few-shot examples (`--steps` evaluations), then accuracy on the test set
//   uniform         per seed: the same sampled modules, each with weight 1/sample
//   best-single     the one pool module with the lowest few-shot loss (seed-independent)
// Seeded methods are reported as the average and the best over seeds. Each method also
// reports its input tokens per test example and its wall time. Writes OUT/results.md and
// OUT/results.json. Every task × method × seed result is cached in OUT/cache/ together with
// the settings that produced it, so an interrupted run resumes where it stopped.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <numeric>
#include <set>

#include "adapt/learner.h"
#include "adapt/objective.h"
#include "adapt/optimizer.h"
#include "cli/command.h"
#include "cli/model_args.h"
#include "cli/model_commands.h"
#include "cli/module_checks.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "eval/bbh.h"
#include "eval/metrics.h"
#include "formats/json.h"
#include "hub/hash.h"
#include "lora/compose.h"
#include "lora/module_set.h"

namespace lorahub::cli {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

struct BbhArgs {
  ModelArgs model;
  std::string lora_list, data_dir = "../shared/data/bbh", tasks = "all", seeds = "1-5";
  std::string out = "bbh-results", loss_mode = "reference";
  std::string methods = "zero-shot,icl,lorahub-cobyla,lorahub-cmaes,uniform,best-single";
  size_t sample = 20;
  std::string sampler = "fisher-yates";
  int steps = 40, max_test = 0, max_new_tokens = 256, batch_size = 10;
};

const std::vector<std::string> kMethods = {"zero-shot",     "icl",     "lorahub-cobyla",
                                           "lorahub-cmaes", "uniform", "best-single"};

bool is_seeded(const std::string& method) {
  return method == "uniform" || method.rfind("lorahub-", 0) == 0;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> items;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    items.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  return items;
}

// The chosen methods in the table's column order, whatever order --methods lists them in.
std::vector<std::string> parse_methods(const std::string& text) {
  const std::vector<std::string> chosen = split_commas(text);
  for (const std::string& m : chosen)
    check(std::find(kMethods.begin(), kMethods.end(), m) != kMethods.end(),
          "--methods: unknown method '{}' (known: {})", m, fmt::join(kMethods, ", "));
  std::vector<std::string> methods;
  for (const std::string& m : kMethods)
    if (std::find(chosen.begin(), chosen.end(), m) != chosen.end()) methods.push_back(m);
  return methods;
}

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
  const std::vector<std::string> tasks = split_commas(text);
  for (const std::string& name : tasks)
    check(std::find(all.begin(), all.end(), name) != all.end(), "--tasks: no task '{}' in {}/tasks",
          name, data_dir);
  return tasks;
}

// The top-level settings whose values differ, e.g. "steps: 40 -> 20, pool"; long values (the
// pool) are named, not printed.
std::string differing_settings(const json& cached, const json& now) {
  std::set<std::string> keys;  // sorted, each once
  for (const json* side : {&cached, &now})
    if (side->is_object())
      for (const auto& [key, value] : side->items()) keys.insert(key);
  std::string out;
  for (const std::string& key : keys) {
    const json before = cached.is_object() ? cached.value(key, json()) : json();
    const json after = now.value(key, json());
    if (before == after) continue;
    const std::string a = before.is_null() ? "unset" : before.dump();
    const std::string b = after.is_null() ? "unset" : after.dump();
    out += (out.empty() ? "" : ", ") +
           (a.size() + b.size() > 80 ? key : fmt::format("{}: {} -> {}", key, a, b));
  }
  return out.empty() ? "unreadable settings" : out;
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
      fmt::print(stderr, "bbh: {} was made with other settings ({}); recomputing\n", path,
                 differing_settings(cached.value("settings", json()), settings_));
    }
    json result = compute();
    write_file_atomic(path, json{{"settings", settings_}, {"result", result}}.dump(1) + "\n");
    return result;
  }

 private:
  std::string dir_;
  json settings_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One task's data and the base model every method starts from (no LoRA between methods).
struct TaskRun {
  Model& model;
  const BbhTask& task;
  const std::vector<BbhExample> test;  // the first --max-test of the split's test set
  const BbhArgs& args;
  const std::vector<std::string>& pool;
};

std::vector<BbhExample> first_test_examples(const BbhTask& task, int max_test) {
  const size_t n = max_test > 0 ? std::min<size_t>(max_test, task.test.size()) : task.test.size();
  return {task.test.begin(), task.test.begin() + n};
}

// The answer is the generation up to the first stop sequence (lm-evaluation-harness's BBH
// convention, "\n\n" and "Q:"): a base decoder that has seen Q:/A: pairs in its prompt goes
// on to write the next question instead of ending with EOS. Every BBH target is one line, so
// stopping never shortens a correct answer; it applies to every method alike, and decoding ends
// there instead of running on to max_new_tokens.
const std::vector<std::string> kAnswerStops = {"\n\n", "Q:"};

// Greedy generation on the prompts, exact-match accuracy, and the mean prompt length.
json evaluate(const TaskRun& run, const std::vector<std::string>& prompts,
              const BoundLora* lora = nullptr) {
  std::vector<std::string> targets;
  for (const BbhExample& e : run.test) targets.push_back(e.target);
  GenerateOptions options;
  options.decode.max_new_tokens = run.args.max_new_tokens;
  options.decode.stop = kAnswerStops;
  options.batch_size = run.args.batch_size;
  options.lora = lora;
  std::vector<std::string> texts;
  for (Decoded& d : generate_with_progress(run.model, prompts, options))
    texts.push_back(std::move(d.text));
  double tokens = 0;
  for (const std::string& p : prompts) tokens += run.model.tokenizer().encode(p).size();
  return {{"accuracy", exact_match_accuracy(texts, targets)},
          {"input_tokens", prompts.empty() ? 0.0 : tokens / prompts.size()},
          {"predictions", texts}};
}

std::vector<std::string> plain_prompts(const TaskRun& run) {
  std::vector<std::string> prompts;
  for (const BbhExample& e : run.test) prompts.push_back(e.prompt);
  return prompts;
}

// Evaluates with `lora` on the unmerged side path, so the base model stays reusable.
json evaluate_with(const TaskRun& run, const LoraMap& lora) {
  return evaluate(run, plain_prompts(run), run.model.bind_lora(lora).get());
}

Objective few_shot_objective(const TaskRun& run, const ModuleSet& modules) {
  std::vector<Example> examples;
  for (const BbhExample& e : run.task.few_shot)
    examples.push_back(run.model.make_example(e.prompt, e.target));
  return Objective(run.model, modules, std::move(examples),
                   ObjectiveOptions{parse_loss_mode(run.args.loss_mode)});
}

// The seed's draw of --sample modules from the pool (the same draw for every seeded method).
ModuleSet load_sampled_modules(const TaskRun& run, uint64_t seed) {
  const SampleRule rule =
      for_flag("--sampler", [&] { return parse_sample_rule(run.args.sampler); });
  return ModuleSet::load(sample_modules(run.pool, run.args.sample, seed, rule),
                         run.args.model.bf16);
}

json run_lorahub(const TaskRun& run, const std::string& optimizer, uint64_t seed) {
  const ModuleSet modules = load_sampled_modules(run, seed);
  Objective objective = few_shot_objective(run, modules);
  LearnOptions options;
  options.optimizer = optimizer;
  options.steps = run.args.steps;
  options.seed = seed;
  const LearnResult learned = learn(objective, options);
  json result = evaluate_with(run, compose(modules, learned.weights));
  result["modules"] = modules.paths();
  result["weights"] = learned.weights;
  result["objective"] = learned.objective;
  json curve = json::array();
  for (const Evaluation& e : learned.history) curve.push_back(e.value);
  result["history"] = curve;
  return result;
}

// The sampled modules averaged: each weight 1/k (a convex combination, the natural
// "no learning" counterpart of LoraHub's learned weights).
json run_uniform(const TaskRun& run, uint64_t seed) {
  const ModuleSet modules = load_sampled_modules(run, seed);
  const std::vector<double> weights(modules.size(), 1.0 / modules.size());
  json result = evaluate_with(run, compose(modules, weights));
  result["modules"] = modules.paths();
  result["weights"] = weights;
  return result;
}

// Every pool module alone (weight 1) scored on the few-shot examples; the lowest loss wins.
json run_best_single(const TaskRun& run) {
  const ModuleSet modules = ModuleSet::load(run.pool, run.args.model.bf16);
  Objective objective = few_shot_objective(run, modules);
  std::vector<double> losses;
  for (size_t i = 0; i < modules.size(); ++i) {
    Point one_hot(modules.size(), 0.0);
    one_hot[i] = 1.0;
    losses.push_back(objective.loss(one_hot));
  }
  const size_t best = std::min_element(losses.begin(), losses.end()) - losses.begin();
  std::vector<double> weights(modules.size(), 0.0);
  weights[best] = 1.0;
  json result = evaluate_with(run, compose(modules, weights));
  result["module"] = modules.paths()[best];
  result["few_shot_losses"] = losses;
  return result;
}

json run_method(const TaskRun& run, const std::string& method, uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  json result;
  if (method == "zero-shot") {
    result = evaluate(run, plain_prompts(run));
  } else if (method == "icl") {
    std::vector<std::string> prompts;
    for (const BbhExample& e : run.test) prompts.push_back(bbh_icl_prompt(run.task, e.input));
    result = evaluate(run, prompts);
  } else if (method == "uniform") {
    result = run_uniform(run, seed);
  } else if (method == "best-single") {
    result = run_best_single(run);
  } else {
    result = run_lorahub(run, method.substr(std::string("lorahub-").size()), seed);
  }
  result["seconds"] = seconds_since(start);
  return result;
}

// One method's results on one task: per seed (or a single run), averaged.
struct Cell {
  double average = 0, best = 0, input_tokens = 0, seconds = 0;
};

json run_task_method(const TaskRun& run, ResultCache& cache, const std::string& method,
                     const std::vector<uint64_t>& seeds, Cell& cell) {
  json runs = json::array();
  std::vector<double> accuracy;
  const std::vector<uint64_t> one_run = {0};
  for (uint64_t seed : is_seeded(method) ? seeds : one_run) {
    const std::string key = is_seeded(method)
                                ? fmt::format("{}.{}.seed{}", run.task.name, method, seed)
                                : fmt::format("{}.{}", run.task.name, method);
    json r = cache.get_or_compute(key, [&] { return run_method(run, method, seed); });
    accuracy.push_back(r["accuracy"]);
    cell.input_tokens = r["input_tokens"];
    cell.seconds += r["seconds"].get<double>();
    r.erase("predictions");
    r.erase("history");
    if (is_seeded(method)) r["seed"] = seed;
    runs.push_back(std::move(r));
  }
  cell.average = std::accumulate(accuracy.begin(), accuracy.end(), 0.0) / accuracy.size();
  cell.best = *std::max_element(accuracy.begin(), accuracy.end());
  return {{"accuracy", cell.average},
          {"best", cell.best},
          {"input_tokens", cell.input_tokens},
          {"seconds", cell.seconds},
          {"runs", runs}};
}

std::string column_title(const std::string& method, size_t seeds) {
  if (method == "zero-shot") return "zero-shot";
  if (method == "icl") return "ICL 5-shot";
  if (method == "best-single") return "best single";
  if (method == "uniform") return fmt::format("uniform avg ({} seeds)", seeds);
  const std::string opt = method == "lorahub-cobyla" ? "COBYLA" : "CMA-ES";
  return fmt::format("LoraHub {} avg ({} seeds) | LoraHub {} best", opt, seeds, opt);
}

std::string table_row(const std::string& task, const std::vector<std::string>& methods,
                      const std::vector<Cell>& cells, bool bold) {
  const auto fmt1 = [bold](double v) {
    return bold ? fmt::format("**{:.1f}**", v) : fmt::format("{:.1f}", v);
  };
  std::string line = "| " + task + " |";
  for (size_t m = 0; m < methods.size(); ++m) {
    line += " " + fmt1(cells[m].average) + " |";
    if (methods[m].rfind("lorahub-", 0) == 0) line += " " + fmt1(cells[m].best) + " |";
  }
  return line + "\n";
}

// The mean over tasks of each method's per-task average, best, tokens; summed wall time.
std::vector<Cell> mean_cells(const std::vector<std::vector<Cell>>& rows, size_t methods) {
  std::vector<Cell> mean(methods);
  for (size_t m = 0; m < methods; ++m)
    for (const auto& row : rows) {
      mean[m].average += row[m].average / rows.size();
      mean[m].best += row[m].best / rows.size();
      mean[m].input_tokens += row[m].input_tokens / rows.size();
      mean[m].seconds += row[m].seconds;
    }
  return mean;
}

std::string markdown(const std::vector<std::string>& tasks,
                     const std::vector<std::vector<Cell>>& rows, const std::vector<Cell>& mean,
                     const std::vector<std::string>& methods, size_t seeds) {
  std::string md = "| task |", rule = "|---|";
  for (const std::string& m : methods) {
    md += " " + column_title(m, seeds) + " |";
    rule += m.rfind("lorahub-", 0) == 0 ? "---:|---:|" : "---:|";
  }
  md += "\n" + rule + "\n";
  for (size_t t = 0; t < tasks.size(); ++t) md += table_row(tasks[t], methods, rows[t], false);
  md += table_row("**average**", methods, mean, true);
  md +=
      "\n| method | input tokens per example | wall time (s, all tasks and seeds) |\n"
      "|---|---:|---:|\n";
  for (size_t m = 0; m < methods.size(); ++m)
    md += fmt::format("| {} | {:.0f} | {:.0f} |\n", methods[m], mean[m].input_tokens,
                      mean[m].seconds);
  return md;
}

// A model or module by its name and content hash, not its path: a cached result stays valid in
// another checkout or machine, and is recomputed when the weights change under the same path.
json content_identity(const std::string& path) {
  return {{"name", fs::path(path).lexically_normal().filename().string()},
          {"sha256", hub::content_sha256_hex(path)}};
}

// The search's constants (code defaults, not options): part of the key so that changing one in
// the code recomputes the LoraHub results instead of serving stale ones.
json optimizer_settings(int sample) {
  const OptimizeOptions defaults;
  return {{"lower", defaults.lower},
          {"upper", defaults.upper},
          {"initial_step", defaults.initial_step},
          {"cmaes_population", cmaes_population(sample)}};
}

json settings_json(const BbhArgs& a, const std::vector<std::string>& pool) {
  json modules = json::array();
  for (const std::string& path : pool) modules.push_back(content_identity(path));
  json s = {{"model", content_identity(a.model.model)},
            {"pool", modules},
            {"sample", a.sample},
            {"steps", a.steps},
            {"loss_mode", a.loss_mode},
            {"max_test", a.max_test},
            {"max_new_tokens", a.max_new_tokens},
            {"answer_stops", kAnswerStops},
            {"optimizer", optimizer_settings(a.sample)},
            {"l1", ObjectiveOptions{}.l1}};
  // Only when set, so that results cached by f32 runs before the option existed stay valid.
  if (a.model.bf16) s["compute"] = "bf16";
  if (a.sampler != "fisher-yates") s["sampler"] = a.sampler;
  return s;
}

void run(const BbhArgs& a) {
  check(a.steps >= 1, "--steps must be at least 1, got {}", a.steps);
  check(a.max_test >= 0, "--max-test must be >= 0, got {}", a.max_test);
  check(a.batch_size >= 1 && a.max_new_tokens >= 1,
        "--batch-size and --max-new-tokens must be >= 1");
  check(a.sample >= 1, "--sample must be at least 1");
  parse_loss_mode(a.loss_mode);
  for_flag("--sampler", [&] { return parse_sample_rule(a.sampler); });
  const std::vector<std::string> methods = parse_methods(a.methods);
  const std::vector<uint64_t> seeds = parse_seeds(a.seeds);
  const std::vector<std::string> tasks = parse_tasks(a.tasks, a.data_dir);
  const std::vector<std::string> pool = read_module_list(a.lora_list);
  warn_if_sample_exceeds(a.sample, pool.size());
  const json settings = settings_json(a, pool);
  ResultCache cache((fs::path(a.out) / "cache").string(), settings);
  auto model = a.model.load();

  std::vector<std::vector<Cell>> rows;
  json per_task = json::array();
  for (const std::string& name : tasks) {
    const BbhTask task = load_bbh_task(a.data_dir, name);
    const TaskRun run{*model, task, first_test_examples(task, a.max_test), a, pool};
    fmt::print(stderr, "bbh: {} ({} test examples)\n", name, run.test.size());
    std::vector<Cell> cells(methods.size());
    json by_method = json::object();
    for (size_t m = 0; m < methods.size(); ++m)
      by_method[methods[m]] = run_task_method(run, cache, methods[m], seeds, cells[m]);
    per_task.push_back(
        {{"task", name}, {"test_examples", run.test.size()}, {"methods", by_method}});
    rows.push_back(std::move(cells));
  }
  const std::vector<Cell> mean = mean_cells(rows, methods.size());
  const std::string md = markdown(tasks, rows, mean, methods, seeds.size());
  write_file_atomic((fs::path(a.out) / "results.md").string(), md);
  json average = json::object();
  for (size_t m = 0; m < methods.size(); ++m)
    average[methods[m]] = {{"accuracy", mean[m].average},
                           {"best", mean[m].best},
                           {"input_tokens", mean[m].input_tokens},
                           {"seconds", mean[m].seconds}};
  const json summary{{"settings", settings},
                     {"methods", methods},
                     {"seeds", seeds},
                     {"tasks", per_task},
                     {"average", average}};
  write_file_atomic((fs::path(a.out) / "results.json").string(), summary.dump(2) + "\n");
  std::cout << md;
}

const Registrar reg("bbh", 60, [](CLI::App& app) {
  auto a = std::make_shared<BbhArgs>();
  auto* cmd = app.add_subcommand(
      "bbh", "BIG-Bench Hard: LoraHub vs zero-shot, ICL and module baselines (our split)");
  cmd->add_option("--model", a->model.model, "HF model directory")->required();
  a->model.add_compute_options(cmd);
  cmd->add_option("--lora-list", a->lora_list, "The module pool: one adapter directory per line")
      ->required();
  cmd->add_option("--data-dir", a->data_dir, "BBH data (tasks/, task-prompts/)")
      ->capture_default_str();
  cmd->add_option("--tasks", a->tasks, "all, or task names separated by commas")
      ->capture_default_str();
  cmd->add_option("--seeds", a->seeds, "Seeds: a range 1-5 or a list 1,2,3")->capture_default_str();
  cmd->add_option("--sample", a->sample, "Modules drawn from the pool per seed")
      ->capture_default_str();
  cmd->add_option("--sampler", a->sampler,
                  "How modules are drawn: fisher-yates, or python (CPython's random.seed(seed); "
                  "random.sample(pool, n), as the reference's reproduce_bbh.py)")
      ->capture_default_str();
  cmd->add_option("--steps", a->steps, "Objective evaluations per seed")->capture_default_str();
  cmd->add_option("--methods", a->methods,
                  "Comma-separated: zero-shot, icl, lorahub-cobyla, lorahub-cmaes, uniform, "
                  "best-single")
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

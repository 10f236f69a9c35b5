#include "eval/bbh_run.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>

#include "adapt/learner.h"
#include "adapt/objective.h"
#include "adapt/optimizer.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "eval/answer.h"
#include "eval/bbh.h"
#include "eval/generate.h"
#include "eval/metrics.h"
#include "eval/option_scoring.h"
#include "eval/selection.h"
#include "formats/digest.h"
#include "formats/json.h"
#include "lora/arrow.h"
#include "lora/compose.h"
#include "lora/module_set.h"

namespace lorahub {
namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string>& bbh_methods() {
  static const std::vector<std::string> methods = [] {
    std::vector<std::string> all = {"zero-shot", "icl",         "lorahub-cobyla", "lorahub-cmaes",
                                    "uniform",   "best-single", "arrow"};
    for (const std::string& combine : combine_method_names())
      if (combine != "lorahub") all.push_back(kBbhComposePrefix + combine);
    return all;
  }();
  return methods;
}

const std::vector<std::string>& bbh_default_methods() {
  static const std::vector<std::string> methods = {"zero-shot",     "icl",     "lorahub-cobyla",
                                                   "lorahub-cmaes", "uniform", "best-single"};
  return methods;
}

std::optional<CombineMethod> bbh_method_combine(const std::string& method) {
  if (!method.starts_with(kBbhComposePrefix) || method == "lorahub-cobyla" ||
      method == "lorahub-cmaes")
    return std::nullopt;
  const std::string name = method.substr(std::string_view(kBbhComposePrefix).size());
  const auto& names = combine_method_names();
  if (name == "lorahub" || std::find(names.begin(), names.end(), name) == names.end())
    return std::nullopt;
  return parse_combine_method(name);
}

bool bbh_method_is_seeded(const std::string& method) {
  return method == "uniform" || method == "arrow" || method.starts_with("lorahub-");
}

namespace {

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

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

}  // namespace

std::vector<std::string> parse_bbh_methods(const std::string& text) {
  const std::vector<std::string> chosen = split_commas(text);
  for (const std::string& m : chosen)
    check(contains(bbh_methods(), m), "unknown method '{}' (known: {})", m,
          fmt::join(bbh_methods(), ", "));
  std::vector<std::string> methods;
  for (const std::string& m : bbh_methods())
    if (contains(chosen, m)) methods.push_back(m);
  return methods;
}

std::vector<uint64_t> parse_seed_list(const std::string& text) {
  std::vector<uint64_t> seeds;
  for (const std::string& item : split_commas(text)) {
    unsigned long long lo = 0, hi = 0;
    char extra = 0;
    const bool range = item.find('-') != std::string::npos;
    const int n = std::sscanf(item.c_str(), "%llu-%llu%c", &lo, &hi, &extra);
    if (n == 1 && !range) hi = lo;
    check((n == 1 && !range) || (n == 2 && lo <= hi && hi - lo < 1000),
          "'{}' is not a seed or a range like 1-5", item);
    for (auto s = lo; s <= hi; ++s) seeds.push_back(s);
  }
  return seeds;
}

std::vector<std::string> parse_bbh_tasks(const std::string& text, const std::string& data_dir) {
  const std::vector<std::string> all = bbh_task_names(data_dir);
  if (text == "all") return all;
  const std::vector<std::string> tasks = split_commas(text);
  for (const std::string& name : tasks)
    check(contains(all, name), "no task '{}' in {}/tasks", name, data_dir);
  return tasks;
}

void validate(const BbhConfig& c) {
  check(c.steps >= 1, "steps must be at least 1, got {}", c.steps);
  check(c.max_test >= 0, "max_test must be >= 0, got {}", c.max_test);
  check(c.batch_size >= 1, "batch size must be >= 1, got {}", c.batch_size);
  check(c.max_new_tokens >= 1, "max_new_tokens must be >= 1, got {}", c.max_new_tokens);
  check(c.sample >= 1, "sample must be at least 1");
  check(!c.methods.empty() && !c.seeds.empty(), "no methods or no seeds to run");
  for (const std::string& m : c.methods)
    check(contains(bbh_methods(), m), "unknown method '{}'", m);
  parse_loss_mode(c.loss_mode);
  parse_sample_rule(c.sampler);
  parse_select(c.select);
  parse_bbh_metric(c.metric);
  for (const std::string& m : c.methods)
    if (bbh_method_combine(m)) check_combine_options(bbh_combine_options(c, m, 0));
}

CombineOptions bbh_combine_options(const BbhConfig& c, const std::string& method, uint64_t seed) {
  CombineOptions o;
  o.method = bbh_method_combine(method).value_or(CombineMethod::kLoraHub);
  const std::string& name = combine_method_name(o.method);
  // Only the methods that drop values take a density (PEFT rejects it nowhere, but ignores it).
  if (name.find("ties") != std::string::npos || name.starts_with("dare") ||
      name.starts_with("magnitude_prune"))
    o.density = c.density;
  o.majority_sign = parse_majority_sign(c.majority_sign);
  o.seed = seed;
  return o;
}

json bbh_method_settings(const BbhConfig& c, const std::string& method, uint64_t seed) {
  if (!bbh_method_combine(method)) return json::object();
  const CombineOptions o = bbh_combine_options(c, method, seed);
  json combine = {{"method", combine_method_name(o.method)},
                  {"optimizer", "cobyla"},
                  {"majority_sign", c.majority_sign},
                  {"svd_rank", o.svd_rank},
                  {"seed", seed}};
  combine["density"] = o.density ? json(*o.density) : json();
  return {{"combine", combine}};
}

BbhMetric parse_bbh_metric(const std::string& name) {
  if (name == "exact") return {true, false};
  if (name == "option-likelihood") return {false, true};
  if (name == "both") return {true, true};
  fail("unknown metric '{}' (known: exact, option-likelihood, both)", name);
}

std::string differing_settings(const json& cached, const json& now) {
  std::set<std::string> keys;  // sorted, each once
  for (const json* side : {&cached, &now})
    if (side->is_object())
      for (const auto& [key, value] : side->items()) keys.insert(key);
  std::string out;
  for (const std::string& key : keys) {
    const json before = cached.is_object() ? cached.value(key, json()) : json();
    const json after = now.is_object() ? now.value(key, json()) : json();
    if (before == after) continue;
    const std::string a = before.is_null() ? "unset" : before.dump();
    const std::string b = after.is_null() ? "unset" : after.dump();
    out += (out.empty() ? "" : ", ") +
           (a.size() + b.size() > 80 ? key : fmt::format("{}: {} -> {}", key, a, b));
  }
  return out.empty() ? "unreadable settings" : out;
}

ResultCache::ResultCache(std::string dir, json settings, std::vector<std::string> reuse_engines)
    : dir_(std::move(dir)),
      settings_(std::move(settings)),
      reuse_engines_(std::move(reuse_engines)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  check(!ec, "{}: cannot create the cache directory: {}", dir_, ec.message());
}

bool ResultCache::reusable(const json& cached, const json& expected) const {
  if (cached == expected) return true;
  if (!cached.is_object() || !cached.contains("engine") || !cached["engine"].is_string())
    return false;
  if (!contains(reuse_engines_, cached["engine"].get<std::string>())) return false;
  json same_engine = cached;
  same_engine["engine"] = expected.value("engine", json());
  return same_engine == expected;
}

json ResultCache::get_or_compute(const std::string& name, const std::function<json()>& compute,
                                 const std::function<void(const std::string&)>& on_stale,
                                 const json& entry_settings) {
  json expected = settings_;
  expected.update(entry_settings);
  const std::string path = (fs::path(dir_) / (name + ".json")).string();
  if (fs::exists(path)) {
    const json cached = parse_json(read_text_file(path), path);
    const json settings = cached.is_object() ? cached.value("settings", json()) : json();
    if (reusable(settings, expected) && cached.contains("result")) return cached["result"];
    if (on_stale)
      on_stale(fmt::format("{} was made with other settings ({}); recomputing", path,
                           differing_settings(settings, expected)));
  }
  json result = compute();
  write_file_atomic(path, json{{"settings", expected}, {"result", result}}.dump(1) + "\n");
  return result;
}

namespace {

// A model or module by its name and content hash, not its path: a cached result stays valid in
// another checkout or machine, and is recomputed when the weights change under the same path.
json content_identity(const std::string& path) {
  return {{"name", fs::path(path).lexically_normal().filename().string()},
          {"sha256", content_sha256_hex(path)}};
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

}  // namespace

json bbh_settings(const BbhConfig& c, std::string_view engine_version) {
  json modules = json::array();
  for (const std::string& path : c.pool) modules.push_back(content_identity(path));
  json s = {{"engine", engine_version},
            {"model", content_identity(c.model_path)},
            {"pool", modules},
            {"sample", c.sample},
            {"steps", c.steps},
            {"loss_mode", c.loss_mode},
            {"max_test", c.max_test},
            {"max_new_tokens", c.max_new_tokens},
            {"answer_stops", kAnswerStops},
            {"optimizer", optimizer_settings(static_cast<int>(c.sample))},
            {"l1", ObjectiveOptions{}.l1}};
  // Only when set, so that the key of the default settings stays as it was before they existed.
  if (c.bf16) {
    s["compute"] = "bf16";
    s["bf16_numerics"] = kBf16NumericsRevision;
  }
  if (c.int8) s["compute_int8"] = true;
  if (c.quantized) {
    s["compute_quantized"] = true;
    s["quantized_numerics"] = kQuantizedNumericsRevision;
  }
  if (c.sampler != "fisher-yates") s["sampler"] = c.sampler;
  if (!c.select.empty()) s["select"] = c.select;
  if (c.metric != "exact") {
    s["metric"] = c.metric;
    if (parse_bbh_metric(c.metric).options) s["max_options"] = kBbhMaxOptions;
  }
  return s;
}

namespace {

// Wall and CPU seconds (the process's, all threads: on a loaded machine the CPU time is the
// measure of the work) of one phase of a method, added to its result as <name>_seconds and
// <name>_cpu_seconds.
class PhaseTimer {
 public:
  PhaseTimer() : wall_(std::chrono::steady_clock::now()), cpu_(std::clock()) {}
  void record(json& result, const std::string& name) const {
    result[name + "_seconds"] = seconds_since(wall_);
    result[name + "_cpu_seconds"] = static_cast<double>(std::clock() - cpu_) / CLOCKS_PER_SEC;
  }

 private:
  std::chrono::steady_clock::time_point wall_;
  std::clock_t cpu_;
};

// One task's data and the base model every method starts from (no LoRA between methods).
struct TaskRun {
  const Model& model;
  const BbhTask& task;
  const std::vector<BbhExample> test;      // the first max_test of the split's test set
  const std::vector<std::string> options;  // bbh_answer_options (none: free-form)
  const BbhConfig& config;
};

std::vector<BbhExample> first_test_examples(const BbhTask& task, int max_test) {
  const size_t n = max_test > 0 ? std::min<size_t>(max_test, task.test.size()) : task.test.size();
  return {task.test.begin(), task.test.begin() + n};
}

std::vector<std::string> test_targets(const TaskRun& run) {
  std::vector<std::string> targets;
  for (const BbhExample& e : run.test) targets.push_back(e.target);
  return targets;
}

std::function<void(size_t, size_t)> labelled_progress(const BbhConfig& c, std::string_view what) {
  if (!c.on_progress) return {};
  return [&c, what](size_t done, size_t total) { c.on_progress(what, done, total); };
}

// Greedy generation by the answer rule: exact-match accuracy and the answers.
json exact_match_result(const TaskRun& run, const std::vector<std::string>& prompts,
                        const BoundLora* lora) {
  GenerateOptions options;
  options.decode = answer_decode_options(run.config.max_new_tokens);
  options.batch_size = run.config.batch_size;
  options.on_progress = labelled_progress(run.config, "generate");
  options.lora = lora;
  std::vector<std::string> texts;
  for (Decoded& d : generate_texts(run.model, prompts, options)) texts.push_back(std::move(d.text));
  return {{"accuracy", exact_match_accuracy(texts, test_targets(run))}, {"predictions", texts}};
}

// Rank classification over the task's answer options (eval/option_scoring.h): acc and acc_norm
// in percent, each question's choice (acc) and every log P(option | prompt). Null accuracies on a
// free-form task.
json option_likelihood_result(const TaskRun& run, const std::vector<std::string>& prompts,
                              const BoundLora* lora) {
  if (run.options.empty()) return {{"option_accuracy", nullptr}, {"option_accuracy_norm", nullptr}};
  OptionScoreOptions settings;
  settings.batch_size = run.config.batch_size;
  settings.on_progress = labelled_progress(run.config, "score options");
  if (lora) settings.lora = {lora};
  const auto likelihoods = option_log_likelihoods(run.model, prompts, run.options, settings);
  const std::vector<std::string> targets = test_targets(run);
  size_t hits = 0, hits_norm = 0;
  json choices = json::array();
  for (size_t q = 0; q < targets.size(); ++q) {
    const std::string& choice = run.options[best_option(likelihoods[q], run.options, false)];
    hits += choice == targets[q];
    hits_norm += run.options[best_option(likelihoods[q], run.options, true)] == targets[q];
    choices.push_back(choice);
  }
  const auto percent = [&](size_t n) { return 100.0 * n / targets.size(); };
  return {{"option_accuracy", percent(hits)},
          {"option_accuracy_norm", percent(hits_norm)},
          {"options", run.options},
          {"option_choices", choices},
          {"option_log_likelihoods", likelihoods}};
}

// The run's metrics (exact match, option-likelihood, or both) and the mean prompt length; with
// `lora`, every prompt runs with that adapter on the side path (the base model stays as it is).
json evaluate(const TaskRun& run, const std::vector<std::string>& prompts,
              const BoundLora* lora = nullptr) {
  double tokens = 0;
  for (const std::string& p : prompts) tokens += run.model.tokenizer().encode(p).size();
  json result = {{"input_tokens", prompts.empty() ? 0.0 : tokens / prompts.size()}};
  const BbhMetric metric = parse_bbh_metric(run.config.metric);
  if (metric.exact) {
    const PhaseTimer timer;
    result.update(exact_match_result(run, prompts, lora));
    timer.record(result, "generate");
  }
  if (metric.options) {
    const PhaseTimer timer;
    result.update(option_likelihood_result(run, prompts, lora));
    timer.record(result, "options");
  }
  return result;
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

std::vector<Example> few_shot_examples(const TaskRun& run) {
  std::vector<Example> examples;
  for (const BbhExample& e : run.task.few_shot)
    examples.push_back(run.model.make_example(e.prompt, e.target));
  return examples;
}

ObjectiveOptions objective_options(const TaskRun& run) {
  return ObjectiveOptions{parse_loss_mode(run.config.loss_mode)};
}

Objective few_shot_objective(const TaskRun& run, const ModuleSet& modules) {
  return Objective(run.model, modules, few_shot_examples(run), objective_options(run));
}

// The seed's draw of `sample` modules from the pool (the same draw for every seeded method),
// then the ones config.select keeps.
ModuleSet load_sampled_modules(const TaskRun& run, uint64_t seed) {
  const BbhConfig& c = run.config;
  ModuleSet drawn = ModuleSet::load(
      sample_modules(c.pool, c.sample, seed, parse_sample_rule(c.sampler)), c.bf16, c.model_path);
  const SelectSpec spec = parse_select(c.select);
  if (spec.rule == SelectRule::kAll || spec.k >= drawn.size()) return drawn;
  std::vector<std::string> inputs;
  for (const BbhExample& e : run.task.few_shot) inputs.push_back(e.prompt);
  return select_for_task(run.model, drawn, few_shot_examples(run), inputs, spec,
                         objective_options(run))
      .kept;
}

// LoraHub's search over w with `combine` composing the modules for each w (the default: Σ wA,
// Σ wB, exactly the lorahub-cobyla / lorahub-cmaes methods of the committed table).
json run_lorahub(const TaskRun& run, const std::string& optimizer, uint64_t seed,
                 const CombineOptions& combine = {}) {
  const ModuleSet modules = load_sampled_modules(run, seed);
  ObjectiveOptions objective_settings = objective_options(run);
  objective_settings.combine = combine;
  Objective objective(run.model, modules, few_shot_examples(run), objective_settings);
  LearnOptions options;
  options.optimizer = optimizer;
  options.steps = run.config.steps;
  options.seed = seed;
  const PhaseTimer learn_timer;
  const LearnResult learned = learn(objective, options);
  json learn_times;
  learn_timer.record(learn_times, "learn");
  const bool lorahub = combine.method == CombineMethod::kLoraHub;
  json result = evaluate_with(run, lorahub ? compose(modules, learned.weights)
                                           : to_lora_map(objective.combiner()(learned.weights)));
  result["modules"] = modules.paths();
  result["weights"] = learned.weights;
  result["objective"] = learned.objective;
  json curve = json::array();
  for (const Evaluation& e : learned.history) curve.push_back(e.value);
  result["history"] = curve;
  result.update(learn_times);
  if (!lorahub) {
    const ObjectiveTimes& t = objective.times();
    result["compose_seconds"] = t.compose_seconds;
    result["forward_seconds"] = t.forward_seconds;
  }
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

// Arrow routing (lora/arrow.h) over the seed's sampled modules with PEFT's defaults (top_k 3,
// temperature 1): gradient-free and example-free, the few-shot examples are not used.
json run_arrow(const TaskRun& run, uint64_t seed) {
  const ModuleSet modules = load_sampled_modules(run, seed);
  const ArrowOptions options{.top_k = std::min<int64_t>(kBbhArrowTopK, modules.size())};
  const auto routed = run.model.bind_router(
      std::make_shared<const LoraRouterMap>(arrow_router(modules, nullptr, options)));
  json result = evaluate(run, plain_prompts(run), routed.get());
  result["modules"] = modules.paths();
  result["top_k"] = options.top_k;
  result["temperature"] = options.temperature;
  return result;
}

// Every pool module alone (weight 1) scored on the few-shot examples; the lowest loss wins.
json run_best_single(const TaskRun& run) {
  const ModuleSet modules =
      ModuleSet::load(run.config.pool, run.config.bf16, run.config.model_path);
  Objective objective = few_shot_objective(run, modules);
  std::vector<double> losses;
  const PhaseTimer learn_timer;
  for (size_t i = 0; i < modules.size(); ++i) {
    Point one_hot(modules.size(), 0.0);
    one_hot[i] = 1.0;
    losses.push_back(objective.loss(one_hot));
  }
  json learn_times;
  learn_timer.record(learn_times, "learn");
  const size_t best = std::min_element(losses.begin(), losses.end()) - losses.begin();
  std::vector<double> weights(modules.size(), 0.0);
  weights[best] = 1.0;
  json result = evaluate_with(run, compose(modules, weights));
  result["module"] = modules.paths()[best];
  result["few_shot_losses"] = losses;
  result.update(learn_times);
  return result;
}

json run_method(const TaskRun& run, const std::string& method, uint64_t seed) {
  const auto start = std::chrono::steady_clock::now();
  const PhaseTimer timer;
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
  } else if (method == "arrow") {
    result = run_arrow(run, seed);
  } else if (bbh_method_combine(method)) {
    result = run_lorahub(run, "cobyla", seed, bbh_combine_options(run.config, method, seed));
  } else {
    result = run_lorahub(run, method.substr(std::string("lorahub-").size()), seed);
  }
  timer.record(result, "total");
  result["seconds"] = seconds_since(start);
  return result;
}

// One method's results on one task: per seed (or a single run), averaged.
// The scores a result may carry (a method's result has those of the run's metric): exact match
// of the generated answer, option-likelihood acc and acc_norm (null on a free-form task).
const std::vector<std::string>& score_keys() {
  static const std::vector<std::string> keys = {"accuracy", "option_accuracy",
                                                "option_accuracy_norm"};
  return keys;
}

// The key of a score's best seed: "best" for exact match (as before the other metrics existed).
std::string best_key(const std::string& score) {
  return score == "accuracy" ? "best" : score + "_best";
}

struct Score {
  double average = NAN, best = NAN;  // NaN: not measured (another metric, a free-form task)
};

// One method's results on one task: per seed (or a single run), averaged.
struct Cell {
  std::map<std::string, Score> score;  // by score key
  double input_tokens = 0, seconds = 0;
  double get(const std::string& key, bool best) const {
    const auto it = score.find(key);
    return it == score.end() ? NAN : best ? it->second.best : it->second.average;
  }
};

json number_or_null(double v) {
  return std::isfinite(v) ? json(v) : json();
}

json run_task_method(const TaskRun& run, ResultCache& cache, const std::string& method,
                     const std::vector<uint64_t>& seeds, Cell& cell) {
  json runs = json::array();
  std::map<std::string, std::vector<double>> values;  // score key -> one value per seed
  const bool seeded = bbh_method_is_seeded(method);
  const std::vector<uint64_t> one_run = {0};
  const auto on_stale = [&](const std::string& why) {
    if (run.config.on_status) run.config.on_status(why);
  };
  for (uint64_t seed : seeded ? seeds : one_run) {
    const std::string key = seeded ? fmt::format("{}.{}.seed{}", run.task.name, method, seed)
                                   : fmt::format("{}.{}", run.task.name, method);
    json r = cache.get_or_compute(
        key, [&] { return run_method(run, method, seed); }, on_stale,
        bbh_method_settings(run.config, method, seed));
    for (const std::string& score : score_keys())
      if (r.contains(score) && r[score].is_number()) values[score].push_back(r[score]);
    cell.input_tokens = r["input_tokens"];
    cell.seconds += r["seconds"].get<double>();
    for (const char* bulky : {"predictions", "history", "option_log_likelihoods", "option_choices"})
      r.erase(bulky);
    if (seeded) r["seed"] = seed;
    runs.push_back(std::move(r));
  }
  json summary = json::object();
  for (const std::string& score : score_keys()) {
    if (!runs[0].contains(score)) continue;  // not this run's metric
    Score s;
    if (const auto& v = values[score]; !v.empty()) {
      s.average = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
      s.best = *std::max_element(v.begin(), v.end());
    }
    cell.score[score] = s;
    summary[score] = number_or_null(s.average);
    summary[best_key(score)] = number_or_null(s.best);
  }
  summary["input_tokens"] = cell.input_tokens;
  summary["seconds"] = cell.seconds;
  summary["runs"] = runs;
  return summary;
}

std::string column_title(const std::string& method, size_t n) {
  const std::string seeds = fmt::format("{} seed{}", n, n == 1 ? "" : "s");
  if (method == "zero-shot") return "zero-shot";
  if (method == "icl") return "ICL 5-shot";
  if (method == "best-single") return "best single";
  if (method == "uniform") return fmt::format("uniform avg ({})", seeds);
  if (method == "arrow") return fmt::format("Arrow top-{} avg ({})", kBbhArrowTopK, seeds);
  const std::string opt = method == "lorahub-cobyla"  ? "COBYLA"
                          : method == "lorahub-cmaes" ? "CMA-ES"
                                                      : method.substr(8) + " (COBYLA)";
  return fmt::format("LoraHub {} avg ({}) | LoraHub {} best", opt, seeds, opt);
}

std::string table_row(const std::string& task, double floor,
                      const std::vector<std::string>& methods,
                      const std::vector<std::pair<double, double>>& cells, bool bold) {
  const auto fmt1 = [bold](double v) {
    return bold ? fmt::format("**{:.1f}**", v) : fmt::format("{:.1f}", v);
  };
  std::string line = fmt::format("| {} | {} |", task, fmt1(floor));
  for (size_t m = 0; m < methods.size(); ++m) {
    line += fmt::format(" {} |", fmt1(cells[m].first));
    if (methods[m].starts_with("lorahub-")) line += fmt::format(" {} |", fmt1(cells[m].second));
  }
  return line + "\n";
}

double mean_of(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0) / values.size();
}

// One table of a score (exact match, option-likelihood acc): a row per task that has the score,
// with the few-shot-majority floor (eval/bbh.h) first, then the mean of the rows shown.
std::string score_table(const std::vector<std::string>& tasks, const std::vector<double>& floors,
                        const std::vector<std::vector<Cell>>& rows,
                        const std::vector<std::string>& methods, size_t seeds,
                        const std::string& score) {
  std::string md = "| task | few-shot majority (floor) |", rule = "|---|---:|";
  for (const std::string& m : methods) {
    md += fmt::format(" {} |", column_title(m, seeds));
    rule += m.starts_with("lorahub-") ? "---:|---:|" : "---:|";
  }
  md += "\n" + rule + "\n";
  std::vector<double> shown_floors;
  std::vector<std::vector<double>> sums(methods.size(), std::vector<double>(2, 0.0));
  for (size_t t = 0; t < tasks.size(); ++t) {
    std::vector<std::pair<double, double>> cells;
    for (const Cell& cell : rows[t])
      cells.emplace_back(cell.get(score, false), cell.get(score, true));
    if (!std::all_of(cells.begin(), cells.end(), [](auto c) { return std::isfinite(c.first); }))
      continue;  // a free-form task has no option-likelihood
    md += table_row(tasks[t], floors[t], methods, cells, false);
    shown_floors.push_back(floors[t]);
    for (size_t m = 0; m < methods.size(); ++m)
      sums[m][0] += cells[m].first, sums[m][1] += cells[m].second;
  }
  if (shown_floors.empty()) return md;
  std::vector<std::pair<double, double>> mean;
  for (const auto& s : sums)
    mean.emplace_back(s[0] / shown_floors.size(), s[1] / shown_floors.size());
  return md + table_row("**average**", mean_of(shown_floors), methods, mean, true);
}

std::string markdown(const std::vector<std::string>& tasks, const std::vector<double>& floors,
                     const std::vector<std::vector<Cell>>& rows,
                     const std::vector<std::string>& methods, size_t seeds, BbhMetric metric) {
  std::string md;
  if (metric.exact) md += score_table(tasks, floors, rows, methods, seeds, "accuracy");
  if (metric.options)
    md += fmt::format(
        "{}Option-likelihood accuracy (acc: the option with the highest log P(option | prompt); "
        "free-form tasks left out):\n\n{}",
        md.empty() ? "" : "\n",
        score_table(tasks, floors, rows, methods, seeds, "option_accuracy"));
  md +=
      "\n| method | input tokens per example | wall time (s, all tasks and seeds) |\n"
      "|---|---:|---:|\n";
  for (size_t m = 0; m < methods.size(); ++m) {
    double tokens = 0, seconds = 0;
    for (const auto& row : rows)
      tokens += row[m].input_tokens / rows.size(), seconds += row[m].seconds;
    md += fmt::format("| {} | {:.0f} | {:.0f} |\n", methods[m], tokens, seconds);
  }
  return md;
}

// Each method's mean over tasks of every score it has (tasks without one left out), of its
// tokens, and its summed wall time.
json average_json(const std::vector<std::vector<Cell>>& rows,
                  const std::vector<std::string>& methods, const std::vector<double>& floors) {
  json average = {{"few_shot_majority", {{"accuracy", mean_of(floors)}}}};
  for (size_t m = 0; m < methods.size(); ++m) {
    json a = json::object();
    for (const std::string& score : score_keys())
      for (bool best : {false, true}) {
        std::vector<double> values;
        bool measured = false;
        for (const auto& row : rows) {
          measured |= row[m].score.count(score) > 0;
          if (const double v = row[m].get(score, best); std::isfinite(v)) values.push_back(v);
        }
        if (measured)
          a[best ? best_key(score) : score] = values.empty() ? json() : json(mean_of(values));
      }
    double tokens = 0, seconds = 0;
    for (const auto& row : rows)
      tokens += row[m].input_tokens / rows.size(), seconds += row[m].seconds;
    a["input_tokens"] = tokens;
    a["seconds"] = seconds;
    average[methods[m]] = a;
  }
  return average;
}

}  // namespace

BbhReport run_bbh(const Model& model, const BbhConfig& c) {
  validate(c);
  const json settings = bbh_settings(c);
  ResultCache cache((fs::path(c.out) / "cache").string(), settings, c.reuse_engines);
  std::vector<std::vector<Cell>> rows;
  std::vector<double> floors;
  json per_task = json::array();
  for (const std::string& name : c.tasks) {
    const BbhTask task = load_bbh_task(c.data_dir, name);
    const TaskRun run{model, task, first_test_examples(task, c.max_test), bbh_answer_options(task),
                      c};
    if (c.on_status) c.on_status(fmt::format("{} ({} test examples)", name, run.test.size()));
    std::vector<Cell> cells(c.methods.size());
    json by_method = json::object();
    for (size_t m = 0; m < c.methods.size(); ++m)
      by_method[c.methods[m]] = run_task_method(run, cache, c.methods[m], c.seeds, cells[m]);
    // Needs no model, so it is not cached. The few-shot set is the same for every seed (the
    // seeds draw modules, not examples), so its per-seed average is this one value.
    const MajorityFloor floor = few_shot_majority_floor(task.few_shot, run.test);
    floors.push_back(floor.accuracy);
    json entry = {{"task", name},
                  {"test_examples", run.test.size()},
                  {"few_shot_majority", {{"answers", floor.answers}, {"accuracy", floor.accuracy}}},
                  {"methods", by_method}};
    if (parse_bbh_metric(c.metric).options) entry["answer_options"] = run.options;
    per_task.push_back(std::move(entry));
    rows.push_back(std::move(cells));
  }
  BbhReport report;
  report.markdown =
      markdown(c.tasks, floors, rows, c.methods, c.seeds.size(), parse_bbh_metric(c.metric));
  report.summary = {{"settings", settings}, {"reused_engines", c.reuse_engines},
                    {"methods", c.methods}, {"seeds", c.seeds},
                    {"tasks", per_task},    {"average", average_json(rows, c.methods, floors)}};
  write_file_atomic((fs::path(c.out) / "results.md").string(), report.markdown);
  write_file_atomic((fs::path(c.out) / "results.json").string(), report.summary.dump(2) + "\n");
  return report;
}

}  // namespace lorahub

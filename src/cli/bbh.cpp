// lorahub bbh: the LoraHub BBH protocol (eval/bbh_run.h: methods, baselines, answer rule,
// result cache, aggregation) on our split. This file parses the flags and prints the table.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>
#include <memory>

#include "adapt/objective.h"
#include "cli/command.h"
#include "cli/model_args.h"
#include "cli/module_checks.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/bbh_run.h"
#include "eval/selection.h"
#include "lora/module_set.h"

namespace lorahub::cli {
namespace {

struct BbhArgs {
  ModelArgs model;
  std::string lora_list, data_dir = "../shared/data/bbh", tasks = "all", seeds = "1-5";
  std::string out = "bbh-results", loss_mode = "reference", metric = "exact";
  std::string methods = fmt::format("{}", fmt::join(bbh_default_methods(), ","));
  size_t sample = 20;
  std::string sampler = "fisher-yates";
  std::string select, majority_sign = "total";
  double density = kBbhDefaultDensity;
  int steps = 40, max_test = 0, max_new_tokens = 256, batch_size = 10;
  std::vector<std::string> reuse_engines;
};

// The flags as the protocol's settings; each value checked with its flag named in the error.
BbhConfig to_config(const BbhArgs& a) {
  BbhConfig c;
  c.model_path = a.model.model;
  c.bf16 = a.model.bf16;
  c.int8 = a.model.int8;
  c.quantized = a.model.quantized;
  c.data_dir = a.data_dir;
  c.methods = for_flag("--methods", [&] { return parse_bbh_methods(a.methods); });
  c.seeds = for_flag("--seeds", [&] { return parse_seed_list(a.seeds); });
  c.tasks = for_flag("--tasks", [&] { return parse_bbh_tasks(a.tasks, a.data_dir); });
  c.sample = a.sample;
  c.sampler = a.sampler;
  c.select = a.select;
  c.density = a.density;
  c.majority_sign = a.majority_sign;
  for_flag("--select", [&] { return parse_select(a.select); });
  for_flag("--sampler", [&] { return parse_sample_rule(a.sampler); });
  c.loss_mode = a.loss_mode;
  for_flag("--loss-mode", [&] { return parse_loss_mode(a.loss_mode); });
  c.metric = a.metric;
  for_flag("--metric", [&] { return parse_bbh_metric(a.metric); });
  c.steps = a.steps;
  c.max_test = a.max_test;
  c.max_new_tokens = a.max_new_tokens;
  c.batch_size = a.batch_size;
  c.out = a.out;
  c.reuse_engines = a.reuse_engines;
  c.pool = for_flag("--lora-list", [&] { return read_module_list(a.lora_list); });
  validate(c);
  return c;
}

void run(const BbhArgs& a) {
  BbhConfig config = to_config(a);
  warn_if_sample_exceeds(config.sample, config.pool.size());
  // One bar per generation: created at its first batch, finished at its last.
  std::unique_ptr<Progress> bar;
  config.on_progress = [&bar](std::string_view what, size_t done, size_t total) {
    if (!bar) bar = std::make_unique<Progress>(std::string(what), total);
    bar->update(done);
    if (done == total) {
      bar->finish();
      bar.reset();
    }
  };
  config.on_status = [](const std::string& line) { fmt::print(stderr, "bbh: {}\n", line); };
  // The engine's model, as eval/bbh_run.h takes it (ModelArgs::load() gives the API's).
  if (a.model.threads > 0) api::init_runtime({.threads = a.model.threads});
  const auto model = load_model(
      a.model.model, {.bf16 = config.bf16, .int8 = config.int8, .quantized = config.quantized});
  std::cout << run_bbh(*model, config).markdown;
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
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--sampler", a->sampler,
                  "How modules are drawn: fisher-yates, or python (CPython's random.seed(seed); "
                  "random.sample(pool, n), as the reference's reproduce_bbh.py)")
      ->capture_default_str();
  cmd->add_option("--select", a->select,
                  "Then keep K of each seed's drawn modules for the seeded methods: loss-rank:K "
                  "(each module's few-shot loss alone) or retrieval:K (as lorahub learn --select)");
  cmd->add_option("--steps", a->steps, "Objective evaluations per seed")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--methods", a->methods,
                  "Comma-separated: zero-shot, icl, lorahub-cobyla, lorahub-cmaes, uniform, "
                  "best-single; only when named: arrow (Arrow routing over the sampled modules, "
                  "top_k 3) and lorahub-TYPE (COBYLA over w composing by a PEFT type: "
                  "lorahub-linear, -cat, -svd, -ties, -ties_svd, -dare_linear, -dare_ties, "
                  "-magnitude_prune, and the other _svd variants)")
      ->capture_default_str();
  cmd->add_option("--density", a->density,
                  "Fraction kept by the lorahub-ties/dare/magnitude_prune methods")
      ->capture_default_str();
  cmd->add_option("--majority-sign", a->majority_sign,
                  "Their TIES sign election: total or frequency")
      ->capture_default_str();
  cmd->add_option("--loss-mode", a->loss_mode, "reference or example-mean")->capture_default_str();
  cmd->add_option("--metric", a->metric,
                  "exact (generate, exact match), option-likelihood (rank the task's answer "
                  "options by log P(option | prompt), as lm-eval's multiple choice) or both")
      ->capture_default_str();
  cmd->add_option("--max-test", a->max_test, "Test examples per task (0 = all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Generation length limit")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch-size", a->batch_size, "Generation batch size")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--out", a->out, "Results folder (results.md, results.json, cache/)")
      ->capture_default_str();
  cmd->add_option("--reuse-cached-engine", a->reuse_engines,
                  "Also reuse cached results made by this engine version (repeatable; every "
                  "other setting must match): e.g. to rebuild a committed table after checking "
                  "the new engine's numerical difference on a sample");
  cmd->callback([a] { run(*a); });
});

}  // namespace
}  // namespace lorahub::cli

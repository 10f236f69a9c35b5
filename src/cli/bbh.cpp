// lorahub bbh: the LoraHub BBH protocol (eval/bbh_run.h: methods, baselines, answer rule,
// result cache, aggregation) on our split. This file parses the flags and prints the table.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>

#include "cli/command.h"
#include "cli/model_args.h"
#include "cli/module_checks.h"
#include "cli/option_flags.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

struct BbhArgs {
  ModelArgs model;
  std::string lora_list, data_dir = "../shared/data/bbh", tasks = "all", seeds = "1-5";
  std::string out = "bbh-results", loss_mode = "reference", metric = "exact";
  std::string methods = fmt::format("{}", fmt::join(api::bbh_default_methods(), ","));
  size_t sample = 20;
  std::string sampler = "fisher-yates";
  std::string select, majority_sign = "total";
  double density = api::kBbhDefaultDensity;
  int steps = 40, max_test = 0, max_new_tokens = 256, batch_size = 10;
  std::vector<std::string> reuse_engines;
};

// The flags of the protocol's options (api::OptionError::option() -> flag).
const FlagNames kBbhFlags = {
    {"select", "--select"},
    {"sampler", "--sampler"},
    {"loss", "--loss-mode"},
    {"metric", "--metric"},
    {"steps", "--steps"},
    {"max_test", "--max-test"},
    {"batch_size", "--batch-size"},
    {"max_new_tokens", "--max-new-tokens"},
    {"sample", "--sample"},
    {"methods", "--methods"},
    {"seeds", "--seeds"},
    {"density", "--density"},
    {"majority_sign", "--majority-sign"},
};

// The flags as the protocol's options; each value checked with its flag named in the error.
api::BbhOptions to_options(const BbhArgs& a) {
  api::BbhOptions o;
  o.model = a.model.model;
  o.bf16 = a.model.bf16;
  o.int8 = a.model.int8;
  o.quantized = a.model.quantized;
  o.data_dir = a.data_dir;
  o.methods = for_flag("--methods", [&] { return api::parse_bbh_methods(a.methods); });
  o.seeds = for_flag("--seeds", [&] { return api::parse_seed_list(a.seeds); });
  // The folder first, so that a wrong --data-dir is named as such rather than as --tasks.
  for_flag("--data-dir", [&] { api::parse_bbh_tasks("all", a.data_dir); });
  o.tasks = for_flag("--tasks", [&] { return api::parse_bbh_tasks(a.tasks, a.data_dir); });
  o.sample = a.sample;
  o.sampler = a.sampler;
  o.select = a.select;
  o.density = a.density;
  o.majority_sign = a.majority_sign;
  o.loss = a.loss_mode;
  o.metric = a.metric;
  o.steps = a.steps;
  o.max_test = a.max_test;
  o.max_new_tokens = a.max_new_tokens;
  o.batch_size = a.batch_size;
  o.out = a.out;
  o.reuse_engines = a.reuse_engines;
  o.pool = for_flag("--lora-list", [&] { return api::read_module_list(a.lora_list); });
  with_flags(kBbhFlags, [&] { api::validate(o); });
  return o;
}

void run(const BbhArgs& a) {
  api::BbhOptions options = to_options(a);
  warn_if_sample_exceeds(options.sample, options.pool.size());
  // One bar per generation: created at its first batch, finished at its last.
  std::unique_ptr<api::ProgressBar> bar;
  options.on_progress = [&bar](const std::string& what, size_t done, size_t total) {
    if (!bar) bar = std::make_unique<api::ProgressBar>(what, total);
    bar->update(done);
    if (done == total) {
      bar->finish();
      bar.reset();
    }
  };
  options.on_status = [](const std::string& line) { fmt::print(stderr, "bbh: {}\n", line); };
  a.model.set_threads();
  std::cout << api::run_bbh(options).markdown;
}

const Registrar reg("bbh", 60, [](CLI::App& app) {
  auto a = std::make_shared<BbhArgs>();
  auto* cmd = app.add_subcommand(
      "bbh", "BIG-Bench Hard: LoraHub vs zero-shot, ICL and module baselines (our split)");
  a->model.add_model_option(cmd);
  a->model.add_compute_options(cmd);
  cmd->add_option("--lora-list", a->lora_list,
                  "The module pool: one module (adapter directory or .gguf) per line")
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

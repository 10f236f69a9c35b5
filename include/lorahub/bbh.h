// The LoraHub BIG-Bench Hard protocol on our split: zero-shot, in-context learning, LoraHub
// (per seed: modules sampled from a pool, weights learned on the task's five examples) and the
// module baselines, each task's accuracy by the evaluation's answer rule, every task x method x
// seed result cached under the settings (and engine version) that made it. Part of lorahub.h
// (include that).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lorahub/lorahub.h"

namespace lorahub::api {

// ------------------------------------------------------------------------------ BBH evaluation

// Every method, in the table's column order: zero-shot, icl, lorahub-cobyla, lorahub-cmaes,
// uniform, best-single, arrow (Arrow routing over the sampled modules, top_k 3).
std::vector<std::string> bbh_methods();
// The methods run when none are named: all but arrow.
std::vector<std::string> bbh_default_methods();
// "a,b,c" -> the named methods in the table's column order; throws Error naming an unknown one.
std::vector<std::string> parse_bbh_methods(const std::string& text);
// "1-5" or "1,2,7" -> the seeds in order; throws Error for anything else.
std::vector<uint64_t> parse_seed_list(const std::string& text);
// "all" or "a,b" -> task names, each checked against data_dir/tasks.
std::vector<std::string> parse_bbh_tasks(const std::string& text, const std::string& data_dir);

// The protocol's settings (one field per setting of the evaluation's own config).
// The density of the ties/dare/magnitude_prune methods: PEFT's model-merging examples use 0.2.
inline constexpr double kBbhDefaultDensity = 0.2;

struct BbhOptions {
  std::string model;                                   // HF model directory or .gguf
  bool bf16 = false, int8 = false, quantized = false;  // the compute path (as ModelOptions)
  std::vector<std::string> pool;                       // module directories
  std::string data_dir;                                // tasks/, task-prompts/
  std::vector<std::string> tasks;                      // parse_bbh_tasks
  std::vector<std::string> methods = bbh_default_methods();
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5};
  size_t sample = 20;  // modules drawn per seed
  // Then keep K of the drawn modules for the seeded methods: "", "loss-rank:K" or
  // "retrieval:K" (as LearnTaskOptions::select).
  std::string select;
  std::string sampler = "fisher-yates";  // as LearnTaskOptions::sampler
  // The lorahub-<type> methods (LoraHub's search over a PEFT combination type): the fraction
  // of values kept by the types that drop values, and TIES's sign election ("total"/"frequency").
  double density = kBbhDefaultDensity;
  std::string majority_sign = "total";
  int steps = 40;                  // objective evaluations per seed
  std::string loss = "reference";  // as LearnOptions::loss
  // "exact" (greedy generation by the answer rule, exact match), "option-likelihood" (rank the
  // task's answer options by log P(option | prompt): acc and acc_norm) or "both".
  std::string metric = "exact";
  int max_test = 0;  // test examples per task (0 = all)
  int max_new_tokens = 256;
  int batch_size = 10;  // generation batch
  std::string out;      // results folder: results.md, results.json, cache/
  // Cached results other engine versions made, reused as if this engine had made them (every
  // other setting must match).
  std::vector<std::string> reuse_engines;
  // After each generation batch; done == total ends one generation.
  // Each stage's progress: what it does ("generate", "score options"), done of total.
  std::function<void(const std::string& what, size_t done, size_t total)> on_progress;
  // One line per task started ("date_understanding (245 test examples)") or result recomputed.
  std::function<void(const std::string& line)> on_status;
};
// Throws OptionError naming the field at fault ("select", "sampler", "loss", "metric",
// "steps", "max_test", "batch_size", "max_new_tokens", "sample", "methods").
void validate(const BbhOptions& options);

struct BbhReport {
  std::string markdown;      // the table, as written to out/results.md
  std::string summary_json;  // as written to out/results.json
};

// Loads the model, runs every task x method (x seed), reusing cached results, and writes
// out/results.{md,json}.
BbhReport run_bbh(const BbhOptions& options);

}  // namespace lorahub::api

// LoraHub learning as a task: the module pool (local modules, a list file, a hub's listing),
// the few-shot examples, the sampled (and optionally selected) modules and the base model,
// assembled once; then the objective at given weights, the search, and its record
// (weights.json). Part of lorahub.h (include that).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lorahub/lorahub.h"

namespace lorahub::api {

// ------------------------------------------------------------------------------ learning tasks

// Where a task's modules come from: `modules` first, then every module the hub lists (when
// `hub` is set), then the lines of `module_list`.
struct ModulePoolOptions {
  std::vector<std::string> modules;  // adapter directories or GGUF LoRA files
  std::string module_list;           // a module list file (read_module_list), or ""
  std::string hub;                   // a lorahub hub's URL, or "" for none
  // key=value[,...] with keys text, base, tag, task, author, rank, limit; several combine.
  std::vector<std::string> hub_filter;
  std::string hub_cache;  // where the hub's modules are kept ("" = the default cache)
};
// The pool's module paths, the hub's fetched into the cache. Throws OptionError naming the field
// at fault: "hub_filter" (a bad key or value), "hub" (no module matches the filter), "modules"
// (no modules from anywhere).
std::vector<std::string> module_pool(const ModulePoolOptions& options);

// The few-shot examples of a JSONL file (as read_examples); throws Error naming the file, or
// file and line for a row without an output.
std::vector<TextExample> read_learning_examples(const std::string& path);

// A `select` value (LearnTaskOptions::select, BbhOptions::select) parsed.
struct ModuleSelection {
  enum class Rule { kAll, kLossRank, kRetrieval };
  Rule rule = Rule::kAll;
  size_t k = 0;  // loss-rank and retrieval: how many modules are kept (>= 1)
};
// "" (all), "loss-rank:K" or "retrieval:K"; throws OptionError("select") for anything else.
ModuleSelection parse_module_selection(const std::string& select);

struct LearnTaskOptions {
  std::string model;                                   // an HF model directory or a .gguf file
  bool bf16 = false, int8 = false, quantized = false;  // as ModelOptions
  std::vector<TextExample> examples;                   // the few-shot examples, each with an output
  std::vector<std::string> modules;                    // the pool (module_pool)
  size_t sample = 0;  // draw this many of the pool (0 or more than it has = all)
  // How the sample is drawn: "fisher-yates", or "python" (CPython's random.seed(seed);
  // random.sample(pool, n), as the reference's reproduce_bbh.py). The seed is learn.seed.
  std::string sampler = "fisher-yates";
  // Then keep K of the drawn modules: "" (all), "loss-rank:K" (each module's loss alone on the
  // examples) or "retrieval:K" (similarity of the examples' inputs to each module's
  // examples.jsonl under the base model).
  std::string select;
  // With select "retrieval:K": a hub (its hub, hub_filter and hub_cache fields) whose modules
  // join the pool ranked by the embeddings stored beside them, so only the K kept are
  // downloaded (one without a usable embedding is downloaded and embedded here, with a
  // warning). Give such a hub here instead of to module_pool, which downloads every module.
  ModulePoolOptions retrieval_hub;
  // Each example's input wrapped in the model's chat template (user turn + generation prompt).
  bool chat = false;
  // The objective (loss, batch_size, l1, regularizer, compose) and the search (steps,
  // optimizer, seed, on_step) of LearnTask::learn; seed also draws the sample.
  LearnOptions learn;
  // Notes for the user: a module made for another base model (warning); what the selection kept.
  std::function<void(const std::string& line)> on_warning;
  std::function<void(const std::string& line)> on_note;
  // Called by LearnTask::load when `sample` asks for more modules than the pool has (`pool`:
  // the modules and the retrieval hub's listed ones together); the whole pool is then drawn.
  std::function<void(size_t sample, size_t pool)> on_sample_exceeds_pool;
};
// Throws OptionError naming the field at fault ("steps", "optimizer", "loss", "batch_size",
// "sampler", "select", "hub" (a retrieval hub without a retrieval selection), or a compose
// field as validate(ComposeOptions) names it).
void validate(const LearnTaskOptions& options);

// The objective at some weights: objective = loss + penalty (the regularization).
struct ObjectiveValue {
  double objective = 0.0, loss = 0.0, penalty = 0.0;
};

// A loaded learning task. Not thread-safe (the objective keeps its scratch).
class LearnTask {
 public:
  // Validates the options, loads the sampled modules and the model, and selects. Throws Error
  // naming the file or module at fault.
  static LearnTask load(const LearnTaskOptions& options);
  ~LearnTask();
  LearnTask(LearnTask&&) noexcept;
  LearnTask& operator=(LearnTask&&) noexcept;

  const std::vector<std::string>& module_names() const;  // the modules composed, in order
  size_t examples() const;
  const LearnTaskOptions& options() const;
  // The objective at w (one weight per module); throws Error for a wrong count.
  ObjectiveValue objective(const std::vector<double>& w);
  // The search of options().learn (steps, optimizer, seed), calling on_step after every
  // evaluation (when given; else options().learn.on_step). Returning false cancels (throws
  // Cancelled).
  LearnResult learn(const std::function<bool(const LearnStep&)>& on_step = nullptr);
  // The modules composed with w by options().learn.compose.
  std::shared_ptr<const Adapter> compose(const std::vector<double>& w) const;
  // The record of a search, weights.json: {"modules", "weights", "objective", "history":
  // [{"step", "objective", "best", "seconds"}], "optimizer", "seed", "loss_mode", "examples",
  // "seconds", "compose", "compose_seconds", "forward_seconds", "selection", "chat"}; objectives
  // that are not finite are null. indent < 0: one line.
  std::string weights_json(const LearnResult& result, int indent = -1) const;

  struct Impl;

 private:
  explicit LearnTask(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Writes the model at model_path (loaded with options' compute settings) with `adapter` merged
// in, as a model that loads on its own, into dir: an HF directory (model.safetensors, config and
// tokenizer files) for an HF model, dir/model.gguf for a GGUF one. Returns the path written.
std::string save_merged_model(const std::string& model_path, const ModelOptions& options,
                              const Adapter& adapter, const std::string& dir);

}  // namespace lorahub::api

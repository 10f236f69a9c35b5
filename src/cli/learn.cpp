// lorahub learn: LoraHub learning end to end. Loads the modules and the base model, finds the
// module weights that minimize the objective on a few examples (adapt/), and writes
//   OUT_DIR/adapter_config.json + adapter_model.safetensors   the composed PEFT adapter
//   OUT_DIR/weights.json   {"modules", "weights", "objective", "history", "optimizer", "seed", ...}
//   OUT_DIR/merged/        with --merge: the base model with the adapter merged in: an HF
//                          directory for an HF base, model.gguf for a GGUF base
//   --out-gguf FILE        the composed adapter also as a llama.cpp GGUF LoRA for --model
// into a staging folder that is renamed to OUT_DIR only when everything is written.
//
// lorahub objective: the objective at given weights (no search), e.g. to compare with the
// reference's lorahub.algorithm.get_score.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

#include "adapt/learner.h"
#include "api/internal.h"
#include "cli/command.h"
#include "cli/compose_args.h"
#include "cli/model_args.h"
#include "cli/module_checks.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "core/progress.h"
#include "eval/jsonl.h"
#include "eval/learn_task.h"
#include "hub/client.h"
#include "lora/compose.h"
#include "lora/export.h"
#include "lora/gguf_lora.h"
#include "lora/module_set.h"

namespace lorahub::cli {
namespace {
namespace fs = std::filesystem;

// CLI11 reads "-3" into a size_t as a huge count (which --sample takes as "all").
const CLI::Validator non_negative_count(
    [](std::string& value) {
      return value.find('-') == std::string::npos
                 ? std::string()
                 : "must be a count of modules (0 = all), got " + value;
    },
    "COUNT");

// The module and example options learn and objective share.
struct TaskArgs {
  ModelArgs model;
  std::vector<std::string> lora;
  std::string lora_list, examples, loss_mode = "reference";
  std::string hub, hub_cache;  // --hub: modules listed by a hub, pulled into a local cache
  std::vector<std::string> hub_filter;
  size_t sample = 0;
  uint64_t seed = 42;
  std::string sampler = "fisher-yates";
  int batch_size = 0;
  ComposeArgs compose;
  std::string select;

  void add_options(CLI::App* cmd) {
    // Not model.add_options(): its --lora (one adapter to merge) means something else here.
    cmd->add_option("--model", model.model, "HF model directory (config.json, weights, tokenizer)")
        ->required();
    model.add_compute_options(cmd);
    model.add_chat_option(cmd);  // the examples' inputs, as generate wraps its prompts
    cmd->add_option("--lora", lora, "LoRA module directories (PEFT adapters)");
    cmd->add_option("--lora-list", lora_list, "File with one module directory per line");
    cmd->add_option("--hub", hub, "Also every module a lorahub hub lists (URL; cached locally)");
    cmd->add_option("--hub-filter", hub_filter,
                    "With --hub: key=value[,...] of text, base, tag, task, author, rank, limit");
    cmd->add_option("--hub-cache", hub_cache,
                    "With --hub: module cache (default $LORAHUB_CACHE or ~/.cache/lorahub/hub)");
    cmd->add_option("--sample", sample, "Draw this many of the modules at random (0 = all)")
        ->check(non_negative_count);
    cmd->add_option("--seed", seed, "Seed for --sample and the optimizer")->capture_default_str();
    cmd->add_option("--sampler", sampler,
                    "How --sample draws: fisher-yates, or python (CPython's random.seed(seed); "
                    "random.sample(modules, n), as the reference's reproduce_bbh.py)")
        ->capture_default_str();
    cmd->add_option("--examples", examples, "JSONL few-shot examples {input, output}")->required();
    cmd->add_option("--loss-mode", loss_mode,
                    "reference (lorahub 0.1.0: batch token-mean CE summed / #examples) or "
                    "example-mean (mean of per-example token-mean CE)")
        ->capture_default_str();
    cmd->add_option("--batch-size", batch_size,
                    "Examples per forward pass (0 = all, as the "
                    "reference)")
        ->capture_default_str();
    compose.add_options(cmd);
    cmd->add_option("--select", select,
                    "Keep K of the modules before composing: loss-rank:K (each module's loss "
                    "alone on the examples) or retrieval:K (similarity of the examples' inputs "
                    "to each module's examples.jsonl under the base model)");
  }
};

// The engine's combine options for the flags: this command is not on the public API yet (its
// task assembly and weights.json are eval/learn_task.h's), so it converts as src/api does.
CombineOptions engine_combine_options(const ComposeArgs& compose, uint64_t seed) {
  return api::to_combine_options(compose.options(seed));
}

void print_warning(const std::string& line) {
  fmt::print(stderr, "lorahub: warning: {}\n", line);
}

// The flags as a LearnTaskSpec (module pool from --lora, --lora-list and --hub), then the task.
LearnTask load_task(const TaskArgs& a) {
  check(a.batch_size >= 0, "--batch-size must be >= 0, got {}", a.batch_size);
  LearnTaskSpec spec;
  spec.objective = ObjectiveOptions{
      for_flag("--loss-mode", [&] { return parse_loss_mode(a.loss_mode); }), a.batch_size};
  spec.objective.combine = engine_combine_options(a.compose, a.seed);
  spec.sampler = for_flag("--sampler", [&] { return parse_sample_rule(a.sampler); });
  spec.select = for_flag("--select", [&] { return parse_select(a.select); });
  spec.rows = read_learning_examples(a.examples);  // before the slow hub and model
  spec.model_path = a.model.model;
  spec.load.threads = a.model.threads;
  spec.load.bf16 = a.model.bf16;
  spec.load.int8 = a.model.int8;  // accepted by add_compute_options, so honoured here too
  spec.load.quantized = a.model.quantized;
  spec.chat = a.model.chat;
  spec.sample = a.sample;
  spec.seed = a.seed;
  spec.pool = a.lora;
  if (!a.hub.empty()) {
    const auto filter =
        for_flag("--hub-filter", [&] { return hub::parse_hub_filter(a.hub_filter); });
    const std::string cache = a.hub_cache.empty() ? hub::default_cache_dir() : a.hub_cache;
    if (spec.select.rule == SelectRule::kRetrieval) {  // ranked by stored embeddings, K fetched
      spec.remote = api::hub_retrieval_pool(a.hub, filter, cache);
      check(!spec.remote.empty(), "--hub {}: no module matches the filter", a.hub);
    } else {
      const auto fetched = hub::fetch_modules(a.hub, filter, cache);
      check(!fetched.empty(), "--hub {}: no module matches the filter", a.hub);
      spec.pool.insert(spec.pool.end(), fetched.begin(), fetched.end());
    }
  }
  check(!spec.pool.empty() || !spec.remote.empty() || !a.lora_list.empty(),
        "no LoRA modules given (use --lora DIR..., --lora-list FILE or --hub URL)");
  if (!a.lora_list.empty())
    for (std::string& p : read_module_list(a.lora_list)) spec.pool.push_back(std::move(p));
  warn_if_sample_exceeds(a.sample, spec.pool.size() + spec.remote.size());
  spec.on_warning = print_warning;
  spec.on_note = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  return load_learn_task(spec);
}

// A folder written under a temporary name and renamed into place at the end, so that a run
// that fails (or is killed) never leaves a half-written OUT_DIR behind.
class StagedDir {
 public:
  StagedDir(const std::string& final_dir, bool overwrite) : final_(final_dir) {
    check(!final_.empty(), "--out: empty path");
    check(overwrite || !fs::exists(final_), "{}: already exists (pass --overwrite to replace it)",
          final_);
    staging_ = fs::path(final_).lexically_normal();
    if (staging_.filename().empty()) staging_ = staging_.parent_path();
    staging_ += fmt::format(".partial-{}", ::getpid());
    std::error_code ec;
    fs::remove_all(staging_, ec);
    fs::create_directories(staging_, ec);
    check(!ec, "{}: cannot create the output directory: {}", final_, ec.message());
  }
  ~StagedDir() {
    std::error_code ec;
    if (!committed_) fs::remove_all(staging_, ec);
  }
  std::string path() const { return staging_.string(); }

  void commit() {
    std::error_code ec;
    fs::remove_all(final_, ec);
    fs::rename(staging_, final_, ec);
    check(!ec, "{}: cannot move the result into place: {}", final_, ec.message());
    committed_ = true;
  }

 private:
  std::string final_;
  fs::path staging_;
  bool committed_ = false;
};

struct LearnArgs {
  TaskArgs task;
  LearnOptions learn;
  std::string out, out_gguf;
  bool merge = false, overwrite = false, json = false;
};

void run_learn(LearnArgs& a) {
  a.learn.seed = a.task.seed;
  check(a.learn.steps >= 1, "--steps must be at least 1, got {}", a.learn.steps);
  check(std::find(optimizer_names().begin(), optimizer_names().end(), a.learn.optimizer) !=
            optimizer_names().end(),
        "unknown optimizer '{}' (known: {})", a.learn.optimizer,
        fmt::join(optimizer_names(), ", "));
  StagedDir out(a.out, a.overwrite);  // before the slow part: an unwritable --out fails now
  LearnTask t = load_task(a.task);
  fmt::print(stderr, "learn: {} modules, {} examples, {} ({} evaluations), seed {}\n",
             t.modules.size(), t.rows.size(), a.learn.optimizer, a.learn.steps, a.learn.seed);
  const LearnResult r = learn(*t.objective, a.learn);
  const LoraModule composed =
      combine_modules(t.modules, r.weights, engine_combine_options(a.task.compose, a.task.seed));
  save_composed_adapter(composed, out.path());
  const nlohmann::json summary = weights_json(t, r, a.learn);
  write_file_atomic((fs::path(out.path()) / "weights.json").string(), summary.dump(2) + "\n");
  if (!a.out_gguf.empty()) save_gguf_lora(composed, a.out_gguf, a.task.model.model);
  std::string merged;  // what --merge wrote, under OUT/merged/
  if (a.merge)
    merged = fs::path(save_merged_model(*t.model, composed, a.task.model.model,
                                        (fs::path(out.path()) / "merged").string()))
                 .filename()
                 .string();
  out.commit();
  if (a.json) {
    std::cout << summary.dump() << '\n';
    return;
  }
  fmt::print("objective {:.6f} with weights\n", r.objective);
  for (size_t i = 0; i < r.weights.size(); ++i)
    fmt::print("  {:+.4f}  {}\n", r.weights[i], t.modules[i].path);
  if (!a.out_gguf.empty()) fmt::print("wrote {} (the adapter as a GGUF LoRA)\n", a.out_gguf);
  fmt::print("wrote {}{}\n", a.out,
             a.merge ? fmt::format(" (adapter, weights.json, merged/{}: the merged model)", merged)
                     : std::string());
}

struct ObjectiveArgs {
  TaskArgs task;
  std::vector<std::string> weights;  // one point per --weights
};

// One JSON line per weight point, in the order given: several points share one model load.
void run_objective(const ObjectiveArgs& a) {
  std::vector<std::vector<double>> points;
  for (const std::string& list : a.weights) points.push_back(parse_weight_list(list));
  LearnTask t = load_task(a.task);
  for (const std::vector<double>& w : points)
    check(w.size() == t.modules.size(), "--weights: {} weights for {} modules", w.size(),
          t.modules.size());
  for (const std::vector<double>& w : points) {
    const double loss = t.objective->loss(w);
    const double penalty = t.objective->penalty(w);
    std::cout << nlohmann::json{{"objective", loss + penalty}, {"loss", loss}, {"penalty", penalty}}
                     .dump()
              << '\n';
  }
}

const Registrar learn_reg("learn", 50, [](CLI::App& app) {
  auto a = std::make_shared<LearnArgs>();
  auto* cmd = app.add_subcommand("learn", "LoraHub: learn module weights from a few examples");
  a->task.add_options(cmd);
  cmd->add_option("--steps", a->learn.steps, "Objective evaluations (optimizer budget)")
      ->capture_default_str();
  cmd->add_option("--optimizer", a->learn.optimizer, "cobyla, bobyqa, cmaes or oneplusone")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Output directory (adapter, weights.json[, merged/])")
      ->required();
  cmd->add_option("--out-gguf", a->out_gguf,
                  "Also write the adapter as a llama.cpp GGUF LoRA file (for --model)");
  cmd->add_flag("--merge", a->merge, "Also write OUT/merged/: the base model with the adapter");
  cmd->add_flag("--overwrite", a->overwrite, "Replace an existing output directory");
  cmd->add_flag("--json", a->json, "Print weights.json on stdout");
  cmd->add_flag(
      "--quiet", [](int64_t) { Progress::set_quiet(true); }, "No progress output");
  cmd->callback([a] { run_learn(*a); });
});

const Registrar objective_reg("objective", 51, [](CLI::App& app) {
  auto a = std::make_shared<ObjectiveArgs>();
  auto* cmd = app.add_subcommand("objective", "The LoraHub objective at given module weights");
  a->task.add_options(cmd);
  cmd->add_option("--weights", a->weights,
                  "Comma-separated weights, one per module; repeat for several points (one JSON "
                  "line each)")
      ->required();
  cmd->callback([a] { run_objective(*a); });
});

}  // namespace
}  // namespace lorahub::cli

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

#include "cli/command.h"
#include "cli/compose_args.h"
#include "cli/model_args.h"
#include "cli/module_checks.h"
#include "cli/option_flags.h"
#include "lorahub/lorahub.h"

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

// The flags of the learning task's options (api::OptionError::option() -> flag).
const FlagNames kTaskFlags = {
    {"steps", "--steps"},     {"optimizer", "--optimizer"},
    {"loss", "--loss-mode"},  {"batch_size", "--batch-size"},
    {"sampler", "--sampler"}, {"select", "--select"},
    {"method", "--compose"},  {"majority_sign", "--majority-sign"},
    {"hub", "--hub"},         {"hub_filter", "--hub-filter"},
};

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
    model.add_model_option(cmd);
    model.add_compute_options(cmd);
    model.add_chat_option(cmd);  // the examples' inputs, as generate wraps its prompts
    cmd->add_option("--lora", lora, "LoRA modules (PEFT adapter directories or GGUF LoRAs)");
    cmd->add_option("--lora-list", lora_list, "File with one module (directory or .gguf) per line");
    cmd->add_option("--hub", hub, "Also every module a lorahub hub lists (URL; cached locally)");
    cmd->add_option("--hub-filter", hub_filter,
                    "With --hub: key=value[,...] of text, base, tag, task, author, rank, limit");
    cmd->add_option("--hub-cache", hub_cache,
                    "With --hub: module cache (default $LORAHUB_CACHE or ~/.cache/lorahub/hub)");
    cmd->add_option("--sample", sample, "Draw this many of the modules at random (0 = all)")
        ->check(non_negative_count);
    cmd->add_option("--seed", seed,
                    "Seed of --sample's draw, the optimizer (learn) and DARE's masks")
        ->capture_default_str();
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

  // The flags as the task's options (the pool not yet assembled), checked.
  api::LearnTaskOptions options(const api::LearnOptions& search) const {
    api::LearnTaskOptions o;
    o.model = model.model;
    o.bf16 = model.bf16;
    o.int8 = model.int8;  // accepted by add_compute_options, so honoured here too
    o.quantized = model.quantized;
    o.chat = model.chat;
    o.sample = sample;
    o.sampler = sampler;
    o.select = select;
    o.learn = search;
    o.learn.seed = seed;
    o.learn.loss = loss_mode;
    o.learn.batch_size = batch_size;
    o.learn.compose = compose.options(seed);
    with_flags(kTaskFlags, [&] { api::validate(o); });
    return o;
  }

  api::ModelOptions model_options() const { return model.compute_options(); }

  // With --select retrieval:K, --hub's modules are ranked by their stored embeddings and only
  // the K kept are downloaded (LearnTaskOptions::retrieval_hub), not fetched into the pool.
  // `select` was checked by options() first.
  bool hub_by_retrieval() const {
    return !hub.empty() &&
           api::parse_module_selection(select).rule == api::ModuleSelection::Rule::kRetrieval;
  }
  api::ModulePoolOptions hub_options() const {
    return {.hub = hub, .hub_filter = hub_filter, .hub_cache = hub_cache};
  }

  // The module pool of --lora, --hub and --lora-list (--hub's only when not by retrieval).
  std::vector<std::string> pool() const {
    try {
      api::ModulePoolOptions o = hub_by_retrieval() ? api::ModulePoolOptions{} : hub_options();
      o.modules = lora;
      o.module_list = lora_list;
      if (hub_by_retrieval() && lora.empty() && lora_list.empty()) return {};
      return api::module_pool(o);
    } catch (const api::OptionError& e) {
      if (e.option() == "modules")
        fail("{} (use --lora DIR..., --lora-list FILE or --hub URL)", e.what());
      fail_for_flag(e, kTaskFlags);
    }
  }
};

void print_warning(const std::string& line) {
  fmt::print(stderr, "lorahub: warning: {}\n", line);
}

// The task of the flags: examples first, then the pool, then modules and model (slowest last).
api::LearnTask load_task(const TaskArgs& a, api::LearnTaskOptions o) {
  o.examples = api::read_learning_examples(a.examples);  // before the slow hub and model
  o.modules = a.pool();
  if (a.hub_by_retrieval()) o.retrieval_hub = a.hub_options();
  o.on_sample_exceeds_pool = warn_if_sample_exceeds;  // a retrieval hub's count: once listed
  o.on_warning = print_warning;
  o.on_note = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
  a.model.set_threads();
  try {
    return api::LearnTask::load(o);
  } catch (const api::OptionError& e) {
    if (e.option() == "modules")
      fail("{} (use --lora DIR..., --lora-list FILE or --hub URL)", e.what());
    fail_for_flag(e, kTaskFlags);
  }
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
  api::LearnOptions learn;
  std::string out, out_gguf;
  bool merge = false, overwrite = false, json = false;
};

// The search with a progress bar: the objective and the best one so far after each step.
api::LearnResult learn_with_bar(api::LearnTask& task) {
  const api::LearnOptions& o = task.options().learn;
  api::ProgressBar bar(fmt::format("learn ({})", o.optimizer), static_cast<size_t>(o.steps));
  double best = 0.0;
  const api::LearnResult r = task.learn([&](const api::LearnStep& step) {
    if (step.evaluation == 1 || step.objective < best) best = step.objective;
    bar.update(static_cast<size_t>(step.evaluation),
               fmt::format("objective {:.6f} best {:.6f}", step.objective, best));
    return true;
  });
  bar.finish(
      fmt::format("best objective {:.6f} after {} evaluations", r.objective, r.history.size()));
  return r;
}

void run_learn(LearnArgs& a) {
  api::LearnTaskOptions options = a.task.options(a.learn);
  StagedDir out(a.out, a.overwrite);  // before the slow part: an unwritable --out fails now
  std::vector<std::string> names;
  api::LearnResult r;
  std::string summary, summary_line;
  {
    api::LearnTask t = load_task(a.task, std::move(options));
    const api::LearnOptions& o = t.options().learn;
    fmt::print(stderr, "learn: {} modules, {} examples, {} ({} evaluations), seed {}\n",
               t.module_names().size(), t.examples(), o.optimizer, o.steps, o.seed);
    r = learn_with_bar(t);
    r.adapter->save(out.path());
    summary = t.weights_json(r, 2);
    summary_line = t.weights_json(r);
    names = t.module_names();
  }  // the task's model is freed before --merge loads one to merge into
  api::write_file_atomic((fs::path(out.path()) / "weights.json").string(), summary + "\n");
  if (!a.out_gguf.empty()) r.adapter->save_gguf(a.out_gguf, a.task.model.model);
  std::string merged;  // what --merge wrote, under OUT/merged/
  if (a.merge)
    merged = fs::path(api::save_merged_model(a.task.model.model, a.task.model_options(), *r.adapter,
                                             (fs::path(out.path()) / "merged").string()))
                 .filename()
                 .string();
  out.commit();
  if (a.json) {
    std::cout << summary_line << '\n';
    return;
  }
  fmt::print("objective {:.6f} with weights\n", r.objective);
  for (size_t i = 0; i < r.weights.size(); ++i)
    fmt::print("  {:+.4f}  {}\n", r.weights[i], names[i]);
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
  api::LearnTask t = load_task(a.task, a.task.options({}));
  for (const std::vector<double>& w : points)
    check(w.size() == t.module_names().size(), "--weights: {} weights for {} modules", w.size(),
          t.module_names().size());
  for (const std::vector<double>& w : points) {
    const api::ObjectiveValue v = t.objective(w);
    std::cout << nlohmann::json{{"objective", v.objective},
                                {"loss", v.loss},
                                {"penalty", v.penalty}}
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
      "--quiet", [](int64_t) { api::ProgressBar::set_quiet(true); }, "No progress output");
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

// The LoraHub BBH protocol (DESIGN §1.7) on our split (eval/bbh.h), with the paper's baselines.
// Methods, per task:
//   zero-shot       the base model on the bare prompt
//   icl             5-shot in-context learning: the few-shot examples answered in the prompt
//   lorahub-cobyla  per seed: `sample` modules drawn from the pool, weights learned on the 5
//   lorahub-cmaes   few-shot examples (`steps` evaluations), then accuracy on the test set
//   uniform         per seed: the same sampled modules, each with weight 1/sample
//   best-single     the one pool module with the lowest few-shot loss (seed-independent)
//   arrow           per seed: Arrow routing per token over the same sampled modules
//                   (lora/arrow.h; PEFT's defaults top_k 3, temperature 1; no examples used)
//   lorahub-<type>  per seed: LoraHub's COBYLA search over w where w composes the sampled
//                   modules by a PEFT add_weighted_adapter type (lora/combine.h: linear, cat,
//                   svd, ties, ties_svd, dare_linear, dare_ties, magnitude_prune and their
//                   _svd variants), recomputed for every w; `density` for the types that drop
//                   values, DARE's masks seeded by the seed. Cached under their own key (the
//                   combination's settings), so they leave the other methods' entries valid.
// With `select` (loss-rank:K, retrieval:K) the seeded methods work on the K drawn modules the
// rule keeps (eval/selection.h), as `lorahub learn --select` does.
// Every method answers by the answer rule (eval/answer.h) and is scored by exact match
// (eval/metrics.h), or by option-likelihood, or both (BbhMetric). Beside the methods, each task
// reports its few-shot-majority floor (eval/bbh.h). Seeded methods are reported as the average and
// the best over seeds; each method also reports its input tokens per test example and its wall
// time. Writes OUT/results.md and OUT/results.json. Every task × method × seed result is cached in
// OUT/cache/ with the settings that produced it (the engine version among them), so that an
// interrupted run resumes where it stopped and a changed setting or engine recomputes.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/version.h"
#include "lora/combine.h"
#include "models/model.h"

namespace lorahub {

inline constexpr int64_t kBbhArrowTopK = 3;  // the arrow method's top_k (PEFT's default)
inline constexpr const char* kBbhComposePrefix = "lorahub-";
// The density of the ties/dare/magnitude_prune methods: PEFT's model-merging examples use 0.2.
inline constexpr double kBbhDefaultDensity = 0.2;

// Every method, in the table's column order.
const std::vector<std::string>& bbh_methods();
// The methods of the committed table (docs/results.md), run when none are named: arrow and the
// lorahub-<type> compositions run only when asked for.
const std::vector<std::string>& bbh_default_methods();
bool bbh_method_is_seeded(const std::string& method);
// The combination type of a lorahub-<type> method (lorahub-linear, lorahub-ties, ...); none
// for every other method (lorahub-cobyla and lorahub-cmaes compose by LoraHub's Σ wA, Σ wB).
std::optional<CombineMethod> bbh_method_combine(const std::string& method);

// "a,b,c" -> the named methods in the table's column order; throws naming an unknown one.
std::vector<std::string> parse_bbh_methods(const std::string& text);
// "1-5" or "1,2,7" (ranges and single seeds, comma-separated) -> the seeds in order.
std::vector<uint64_t> parse_seed_list(const std::string& text);
// "all" or "a,b" -> task names, each checked against data_dir/tasks.
std::vector<std::string> parse_bbh_tasks(const std::string& text, const std::string& data_dir);

// How answers are scored: `exact` generates greedily by the answer rule (eval/answer.h) and
// compares by exact match (eval/metrics.h); `option-likelihood` ranks the task's answer options
// (eval/bbh.h bbh_answer_options) by log P(option | prompt) (eval/option_scoring.h: acc and
// acc_norm); `both` does both in one run.
struct BbhMetric {
  bool exact = true, options = false;
};
// "exact", "option-likelihood" or "both"; throws naming an unknown one.
BbhMetric parse_bbh_metric(const std::string& name);

struct BbhConfig {
  std::string model_path;                // named in the cache key by content hash
  bool bf16 = false;                     // the compute path the model was loaded with
  bool int8 = false, quantized = false;  // (the quantized paths, likewise)
  std::vector<std::string> pool;         // module directories
  std::string data_dir;                  // tasks/, task-prompts/
  std::vector<std::string> tasks;        // parse_bbh_tasks
  std::vector<std::string> methods = bbh_default_methods();
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5};
  size_t sample = 20;  // modules drawn per seed
  // Then keep K of the drawn modules for the seeded methods: "" (all), "loss-rank:K" or
  // "retrieval:K" (eval/selection.h), as `lorahub learn --select` keeps them.
  std::string select;
  std::string sampler = "fisher-yates";  // lora/module_set.h parse_sample_rule
  double density = kBbhDefaultDensity;   // the lorahub-<type> methods that drop values
  std::string majority_sign = "total";   // their TIES sign election (lora/combine.h)
  int steps = 40;                        // objective evaluations per seed
  std::string loss_mode = "reference";   // adapt/objective.h parse_loss_mode
  std::string metric = "exact";          // parse_bbh_metric
  int max_test = 0;                      // test examples per task (0 = all)
  int max_new_tokens = 256;
  int batch_size = 10;  // generation batch
  std::string out;      // results folder
  // Cached results that other engine versions made, reused as if this engine had made them
  // (every other setting must still match): to rebuild a committed table after a change whose
  // numerical effect was checked on a sample. New results are keyed by this engine.
  std::vector<std::string> reuse_engines;
  // Called after each batch of a generation ("generate", sequences) or an option scoring
  // ("score options", (question, option) pairs), e.g. to draw a bar; done == total ends one.
  std::function<void(std::string_view what, size_t done, size_t total)> on_progress;
  // One line per task started ("date_understanding (245 test examples)").
  std::function<void(const std::string& line)> on_status;
};

// Throws Error naming the setting at fault (steps < 1, an unknown loss mode, ...).
void validate(const BbhConfig& config);

// How a method composes for `seed` (DARE's masks seeded by it); LoraHub's for the others.
CombineOptions bbh_combine_options(const BbhConfig& config, const std::string& method,
                                   uint64_t seed);
// What a method's cache entries add to the key (bbh_settings): the combination of a
// lorahub-<type> method; nothing for the others, whose keys stay as before these existed.
nlohmann::json bbh_method_settings(const BbhConfig& config, const std::string& method,
                                   uint64_t seed);

// The cache key: everything that decides a result (model and modules by name and content hash,
// not path; the protocol's settings; the search's constants) and the engine version.
nlohmann::json bbh_settings(const BbhConfig& config,
                            std::string_view engine_version = kEngineVersion);

// The top-level settings whose values differ, e.g. "steps: 40 -> 20, pool"; long values (the
// pool) are named, not printed.
std::string differing_settings(const nlohmann::json& cached, const nlohmann::json& now);

// JSON result files in a folder, each reused only when it was made with the same settings (or
// with the same settings by one of `reuse_engines`, see BbhConfig).
class ResultCache {
 public:
  ResultCache(std::string dir, nlohmann::json settings,
              std::vector<std::string> reuse_engines = {});
  // The result named `name`: from DIR/<name>.json when its settings equal this cache's, else
  // compute() (written atomically before it is returned). `on_stale` hears why one is redone.
  // `entry_settings` adds keys of this entry alone to the settings (bbh_method_settings).
  nlohmann::json get_or_compute(const std::string& name,
                                const std::function<nlohmann::json()>& compute,
                                const std::function<void(const std::string&)>& on_stale = {},
                                const nlohmann::json& entry_settings = nlohmann::json::object());

 private:
  bool reusable(const nlohmann::json& cached_settings, const nlohmann::json& expected) const;

  std::string dir_;
  nlohmann::json settings_;
  std::vector<std::string> reuse_engines_;
};

struct BbhReport {
  std::string markdown;    // the table, as written to OUT/results.md
  nlohmann::json summary;  // as written to OUT/results.json
};

// Runs every task × method (× seed) on the base model (an adapter is bound per evaluation; the
// model is never changed), reusing cached results, and writes OUT/results.{md,json}.
BbhReport run_bbh(const Model& model, const BbhConfig& config);

}  // namespace lorahub

// Learning tasks through the public API: the module pool (hub/), the task (eval/learn_task.h),
// the search (adapt/learner.h) and the merged model (lora/export.h).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "adapt/learner.h"
#include "adapt/optimizer.h"
#include "api/internal.h"
#include "core/error.h"
#include "eval/learn_task.h"
#include "hub/client.h"
#include "lora/combine.h"
#include "lora/export.h"

namespace lorahub::api {

namespace {

lorahub::LoadOptions load_options(const LearnTaskOptions& o) {
  lorahub::LoadOptions load;
  load.bf16 = o.bf16;
  load.int8 = o.int8;
  load.quantized = o.quantized;
  return load;
}

}  // namespace

std::vector<std::string> module_pool(const ModulePoolOptions& options) {
  std::vector<std::string> pool = options.modules;
  if (!options.hub.empty()) {
    const hub::HubFilter filter =
        as_option("hub_filter", [&] { return hub::parse_hub_filter(options.hub_filter); });
    const auto fetched = hub::fetch_modules(
        options.hub, filter,
        options.hub_cache.empty() ? hub::default_cache_dir() : options.hub_cache);
    if (fetched.empty()) throw OptionError("hub", options.hub + ": no module matches the filter");
    pool.insert(pool.end(), fetched.begin(), fetched.end());
  }
  if (pool.empty() && options.module_list.empty())
    throw OptionError("modules", "no LoRA modules given");
  if (!options.module_list.empty())
    for (std::string& p : lorahub::read_module_list(options.module_list))
      pool.push_back(std::move(p));
  return pool;
}

namespace {

// The hub's modules listed with their stored embeddings (none downloaded yet), or none.
std::vector<RemoteModule> retrieval_pool(const ModulePoolOptions& o) {
  if (o.hub.empty()) return {};
  const hub::HubFilter filter =
      as_option("hub_filter", [&] { return hub::parse_hub_filter(o.hub_filter); });
  std::vector<RemoteModule> remote = hub_retrieval_pool(
      o.hub, filter, o.hub_cache.empty() ? hub::default_cache_dir() : o.hub_cache);
  if (remote.empty()) throw OptionError("hub", o.hub + ": no module matches the filter");
  return remote;
}

}  // namespace

std::vector<TextExample> read_learning_examples(const std::string& path) {
  std::vector<TextExample> rows;
  for (lorahub::TextExample& row : lorahub::read_learning_examples(path))
    rows.push_back({std::move(row.input), std::move(row.output), row.line});
  return rows;
}

// ------------------------------------------------------------------------------ LearnTask

struct LearnTask::Impl {
  LearnTaskOptions options;
  lorahub::LearnTask task;
  std::vector<std::string> names;
};

namespace {

lorahub::ObjectiveOptions objective_options(const LearnOptions& o) {
  lorahub::ObjectiveOptions out;
  out.mode = as_option("loss", [&] { return parse_loss_mode(o.loss); });
  if (o.batch_size < 0)
    throw OptionError("batch_size", fmt::format("must be >= 0, got {}", o.batch_size));
  out.batch_size = o.batch_size;
  out.l1 = o.l1;
  out.regularizer = o.regularizer;
  out.combine = to_combine_options(o.compose);
  return out;
}

void check_search(const LearnOptions& o) {
  if (o.steps < 1) throw OptionError("steps", fmt::format("must be at least 1, got {}", o.steps));
  const auto& known = optimizer_names();
  if (std::find(known.begin(), known.end(), o.optimizer) == known.end())
    throw OptionError("optimizer", fmt::format("unknown optimizer '{}' (known: {})", o.optimizer,
                                               fmt::join(known, ", ")));
}

// The engine's record of a search, for eval's weights.json.
lorahub::LearnResult engine_result(const LearnResult& r) {
  lorahub::LearnResult out;
  out.weights = r.weights;
  out.objective = r.objective;
  out.seconds = r.seconds;
  for (const LearnStep& s : r.history) {
    out.history.push_back({s.evaluation, s.weights, s.objective});
    out.elapsed.push_back(s.seconds);
  }
  return out;
}

lorahub::LearnOptions engine_search(const LearnOptions& o) {
  lorahub::LearnOptions out;
  out.optimizer = o.optimizer;
  out.steps = o.steps;
  out.seed = o.seed;
  out.progress = false;  // the caller draws progress from on_step
  return out;
}

}  // namespace

ModuleSelection parse_module_selection(const std::string& select) {
  const SelectSpec spec = as_option("select", [&] { return parse_select(select); });
  switch (spec.rule) {
    case SelectRule::kAll:
      return {};
    case SelectRule::kLossRank:
      return {ModuleSelection::Rule::kLossRank, spec.k};
    case SelectRule::kRetrieval:
      return {ModuleSelection::Rule::kRetrieval, spec.k};
  }
  fail("select: unknown rule");
}

void validate(const LearnTaskOptions& options) {
  check_search(options.learn);
  objective_options(options.learn);
  as_option("sampler", [&] { return parse_sample_rule(options.sampler); });
  const ModuleSelection select = parse_module_selection(options.select);
  if (!options.retrieval_hub.hub.empty() && select.rule != ModuleSelection::Rule::kRetrieval)
    throw OptionError("hub", "a retrieval hub needs a retrieval:K selection");
}

LearnTask::LearnTask(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LearnTask::~LearnTask() = default;
LearnTask::LearnTask(LearnTask&&) noexcept = default;
LearnTask& LearnTask::operator=(LearnTask&&) noexcept = default;

LearnTask LearnTask::load(const LearnTaskOptions& options) {
  ensure_runtime();
  validate(options);
  LearnTaskSpec spec;
  spec.objective = objective_options(options.learn);
  spec.sampler = as_option("sampler", [&] { return parse_sample_rule(options.sampler); });
  spec.select = as_option("select", [&] { return parse_select(options.select); });
  for (const TextExample& row : options.examples)
    spec.rows.push_back({row.input, row.output, row.line});
  spec.model_path = options.model;
  spec.load = load_options(options);
  spec.chat = options.chat;
  spec.sample = options.sample;
  spec.seed = options.learn.seed;
  spec.pool = options.modules;
  spec.remote = retrieval_pool(options.retrieval_hub);
  if (spec.pool.empty() && spec.remote.empty())
    throw OptionError("modules", "no LoRA modules given");
  const size_t pool = spec.pool.size() + spec.remote.size();
  if (options.sample > pool && options.on_sample_exceeds_pool)
    options.on_sample_exceeds_pool(options.sample, pool);
  spec.on_warning = options.on_warning;
  spec.on_note = options.on_note;
  // Built in place: the task's objective refers to its modules, so the task must never move.
  auto impl = std::unique_ptr<Impl>(new Impl{options, load_learn_task(spec), {}});
  impl->names = impl->task.modules.paths();
  return LearnTask(std::move(impl));
}

const std::vector<std::string>& LearnTask::module_names() const {
  return impl_->names;
}
size_t LearnTask::examples() const {
  return impl_->task.rows.size();
}
const LearnTaskOptions& LearnTask::options() const {
  return impl_->options;
}

ObjectiveValue LearnTask::objective(const std::vector<double>& w) {
  check(w.size() == impl_->names.size(), "objective: {} weights for {} modules", w.size(),
        impl_->names.size());
  Objective& objective = *impl_->task.objective;
  ObjectiveValue v;
  v.loss = objective.loss(w);
  v.penalty = objective.penalty(w);
  v.objective = v.loss + v.penalty;
  return v;
}

LearnResult LearnTask::learn(const std::function<bool(const LearnStep&)>& on_step) {
  const LearnOptions& o = impl_->options.learn;
  const auto& report = on_step ? on_step : o.on_step;
  Objective& objective = *impl_->task.objective;
  lorahub::LearnOptions search = engine_search(o);
  LearnResult out;
  search.on_evaluation = [&](const Evaluation& e, double) {
    out.history.push_back({e.step, e.w, e.value, e.value - objective.penalty(e.w), 0.0});
    if (report && !report(out.history.back())) throw Cancelled();
  };
  const lorahub::LearnResult r = lorahub::learn(objective, search);
  for (size_t i = 0; i < out.history.size() && i < r.elapsed.size(); ++i)
    out.history[i].seconds = r.elapsed[i];
  out.weights = r.weights;
  out.objective = r.objective;
  out.seconds = r.seconds;
  out.adapter = compose(out.weights);
  return out;
}

std::shared_ptr<const Adapter> LearnTask::compose(const std::vector<double>& w) const {
  check(w.size() == impl_->names.size(), "compose: {} weights for {} modules", w.size(),
        impl_->names.size());
  return make_adapter(
      "composition",
      combine_modules(impl_->task.modules, w, to_combine_options(impl_->options.learn.compose)));
}

std::string LearnTask::weights_json(const LearnResult& result, int indent) const {
  lorahub::LearnOptions o = engine_search(impl_->options.learn);
  return lorahub::weights_json(impl_->task, engine_result(result), o).dump(indent);
}

std::string save_merged_model(const std::string& model_path, const ModelOptions& options,
                              const Adapter& adapter, const std::string& dir) {
  ensure_runtime();
  check(adapter.impl().map != nullptr,
        "adapter {}: a routed adapter mixes modules per token and cannot be merged",
        adapter.name());
  check(options.merge.empty() && options.merge_adapters.empty(),
        "save_merged_model: merge the adapter through the `adapter` argument");
  lorahub::LoadOptions load;
  load.bf16 = options.bf16;
  load.int8 = options.int8;
  load.quantized = options.quantized;
  const std::unique_ptr<lorahub::Model> model = load_model(model_path, load);
  return lorahub::save_merged_model(*model, adapter.impl().module, model_path, dir);
}

}  // namespace lorahub::api

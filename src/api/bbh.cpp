// The BBH protocol through the public API: eval/bbh_run.h on a model loaded for it.
#include <fmt/format.h>

#include "adapt/objective.h"
#include "api/internal.h"
#include "core/error.h"
#include "eval/bbh_run.h"
#include "eval/selection.h"
#include "lora/module_set.h"

namespace lorahub::api {

namespace {

void check_option(bool ok, const char* option, const std::string& what) {
  if (!ok) throw OptionError(option, what);
}

// The evaluation's config: a field-by-field copy.
BbhConfig to_config(const BbhOptions& o) {
  BbhConfig c;
  c.model_path = o.model;
  c.bf16 = o.bf16;
  c.int8 = o.int8;
  c.quantized = o.quantized;
  c.pool = o.pool;
  c.data_dir = o.data_dir;
  c.tasks = o.tasks;
  c.methods = o.methods;
  c.seeds = o.seeds;
  c.sample = o.sample;
  c.select = o.select;
  c.sampler = o.sampler;
  c.density = o.density;
  c.majority_sign = o.majority_sign;
  c.steps = o.steps;
  c.loss_mode = o.loss;
  c.metric = o.metric;
  c.max_test = o.max_test;
  c.max_new_tokens = o.max_new_tokens;
  c.batch_size = o.batch_size;
  c.out = o.out;
  c.reuse_engines = o.reuse_engines;
  if (o.on_progress)
    c.on_progress = [f = o.on_progress](std::string_view what, size_t done, size_t total) {
      f(std::string(what), done, total);
    };
  c.on_status = o.on_status;
  return c;
}

}  // namespace

std::vector<std::string> bbh_methods() {
  return lorahub::bbh_methods();
}
std::vector<std::string> bbh_default_methods() {
  return lorahub::bbh_default_methods();
}
std::vector<std::string> parse_bbh_methods(const std::string& text) {
  return lorahub::parse_bbh_methods(text);
}
std::vector<uint64_t> parse_seed_list(const std::string& text) {
  return lorahub::parse_seed_list(text);
}
std::vector<std::string> parse_bbh_tasks(const std::string& text, const std::string& data_dir) {
  return lorahub::parse_bbh_tasks(text, data_dir);
}

void validate(const BbhOptions& o) {
  as_option("select", [&] { parse_select(o.select); });
  as_option("sampler", [&] { parse_sample_rule(o.sampler); });
  as_option("loss", [&] { parse_loss_mode(o.loss); });
  as_option("metric", [&] { parse_bbh_metric(o.metric); });
  check_option(o.steps >= 1, "steps", fmt::format("must be at least 1, got {}", o.steps));
  check_option(o.max_test >= 0, "max_test", fmt::format("must be >= 0, got {}", o.max_test));
  check_option(o.batch_size >= 1, "batch_size", fmt::format("must be >= 1, got {}", o.batch_size));
  check_option(o.max_new_tokens >= 1, "max_new_tokens",
               fmt::format("must be >= 1, got {}", o.max_new_tokens));
  check_option(o.sample >= 1, "sample", "must be at least 1");
  check_option(!o.methods.empty(), "methods", "no methods to run");
  check_option(!o.seeds.empty(), "seeds", "no seeds to run");
  check_option(o.density >= 0 && o.density <= 1, "density",
               fmt::format("must be in [0, 1], got {}", o.density));
  as_option("methods", [&] { lorahub::validate(to_config(o)); });  // names an unknown method
}

BbhReport run_bbh(const BbhOptions& options) {
  ensure_runtime();
  validate(options);
  lorahub::LoadOptions load;
  load.bf16 = options.bf16;
  load.int8 = options.int8;
  load.quantized = options.quantized;
  const std::unique_ptr<lorahub::Model> model = load_model(options.model, load);
  const lorahub::BbhReport report = lorahub::run_bbh(*model, to_config(options));
  return {report.markdown, report.summary.dump(2)};
}

}  // namespace lorahub::api

#include "eval/learn_task.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "lora/base_model.h"
#include "lora/combine.h"

namespace lorahub {
namespace {

nlohmann::json selection_json(const SelectSpec& spec, const ModuleSet& pool, const Selection& s) {
  nlohmann::json scores = nlohmann::json::object(), kept = nlohmann::json::array();
  for (size_t i = 0; i < pool.size(); ++i) scores[pool[i].path] = s.score.at(i);
  for (size_t i : s.kept_index) kept.push_back(pool[i].path);
  return {{"rule", select_rule_name(spec.rule)}, {"k", spec.k}, {"scores", scores}, {"kept", kept}};
}

void say(const std::function<void(const std::string&)>& to, const std::string& line) {
  if (to) to(line);
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json();
}

}  // namespace

std::vector<TextExample> read_learning_examples(const std::string& path) {
  std::vector<TextExample> rows = read_jsonl_examples(path);
  check(!rows.empty(), "{}: no examples", path);
  for (const TextExample& row : rows)
    check(row.output.has_value(), "{}:{}: missing field 'output' (learning needs targets)", path,
          row.line);
  return rows;
}

LearnTask load_learn_task(const LearnTaskSpec& spec) {
  LearnTask t;
  t.loss_mode = spec.objective.mode;
  t.rows = spec.rows;
  check(!t.rows.empty(), "no few-shot examples given");
  for (const TextExample& row : t.rows)
    check(row.output.has_value(), "example {} has no output", row.line);
  check(!spec.pool.empty(), "no LoRA modules given");
  t.modules = ModuleSet::load(sample_modules(spec.pool, spec.sample, spec.seed, spec.sampler),
                              spec.load.bf16, spec.model_path);
  for (const LoraModule& m : t.modules.modules())
    if (!base_model_matches(m.config.base_model_name_or_path, spec.model_path))
      say(spec.on_warning, fmt::format("module {} was made for {}, not for {}", m.path,
                                       m.config.base_model_name_or_path, spec.model_path));
  t.model = load_model(spec.model_path, spec.load);
  std::vector<Example> examples;
  std::vector<std::string> inputs;
  t.chat = spec.chat;
  for (const TextExample& row : t.rows) {
    const std::string input =
        spec.chat ? t.model->tokenizer().apply_chat_template(row.input) : row.input;
    examples.push_back(t.model->make_example(input, *row.output));
    inputs.push_back(row.input);
  }
  if (spec.select.rule != SelectRule::kAll && spec.select.k < t.modules.size()) {
    Selection s =
        select_for_task(*t.model, t.modules, examples, inputs, spec.select, spec.objective);
    t.selection = selection_json(spec.select, t.modules, s);
    say(spec.on_note,
        fmt::format("select ({}): kept {} of {} modules", select_rule_name(spec.select.rule),
                    s.kept.size(), t.modules.size()));
    t.modules = std::move(s.kept);
  }
  t.objective =
      std::make_unique<Objective>(*t.model, t.modules, std::move(examples), spec.objective);
  return t;
}

nlohmann::json weights_json(const LearnTask& t, const LearnResult& r, const LearnOptions& o) {
  nlohmann::json history = nlohmann::json::array();
  double best = INFINITY;
  for (size_t i = 0; i < r.history.size(); ++i) {
    const Evaluation& e = r.history[i];
    best = std::min(best, e.value);
    history.push_back({{"step", e.step},
                       {"objective", number_or_null(e.value)},
                       {"best", number_or_null(best)},
                       {"seconds", i < r.elapsed.size() ? r.elapsed[i] : r.seconds}});
  }
  return {{"modules", t.modules.paths()},
          {"weights", r.weights},
          {"objective", number_or_null(r.objective)},
          {"history", history},
          {"optimizer", o.optimizer},
          {"seed", o.seed},
          {"loss_mode", loss_mode_name(t.loss_mode)},
          {"examples", t.rows.size()},
          {"seconds", r.seconds},
          {"compose", combine_method_name(t.objective->combine_method())},
          {"compose_seconds", t.objective->times().compose_seconds},
          {"forward_seconds", t.objective->times().forward_seconds},
          {"selection", t.selection},
          {"chat", t.chat}};
}

}  // namespace lorahub

#include "eval/learn_task.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "core/error.h"
#include "formats/digest.h"
#include "formats/module_embedding.h"
#include "lora/base_model.h"
#include "lora/combine.h"

namespace lorahub {
namespace {

nlohmann::json selection_json(const SelectSpec& spec, const std::vector<std::string>& names,
                              const std::vector<double>& score,
                              const std::vector<size_t>& kept_index) {
  nlohmann::json scores = nlohmann::json::object(), kept = nlohmann::json::array();
  for (size_t i = 0; i < names.size(); ++i) scores[names[i]] = score.at(i);
  for (size_t i : kept_index) kept.push_back(names[i]);
  return {{"rule", select_rule_name(spec.rule)}, {"k", spec.k}, {"scores", scores}, {"kept", kept}};
}

void say(const std::function<void(const std::string&)>& to, const std::string& line) {
  if (to) to(line);
}

using RemoteByName = std::map<std::string, const RemoteModule*>;

// The embedding a hub stores for `m` if retrieval can use it here; else "" with why not in `why`.
std::optional<std::vector<float>> stored_embedding(const RemoteModule& m,
                                                   const std::string& model_sha256, size_t width,
                                                   std::string& why) {
  if (m.embedding.empty()) {
    why = fmt::format("it has no {}", kModuleEmbeddingFile);
    return std::nullopt;
  }
  try {
    ModuleEmbedding e = parse_module_embedding(m.embedding);
    why = embedding_mismatch(e, model_sha256, width);
    if (why.empty()) return std::move(e.vector);
  } catch (const Error& e) {
    why = e.what();
  }
  return std::nullopt;
}

struct Retrieved {
  std::vector<std::string> paths;  // the kept modules' folders, in the order drawn
  nlohmann::json selection;
};

// Retrieval over a pool with hub modules: each is ranked by the embedding the hub stores for it,
// and only the K kept ones are downloaded. The scores are those select_for_task computes for the
// same modules on disk (the stored vectors are what compute_module_embedding gives).
Retrieved retrieve_remote(const LearnTaskSpec& spec, const Model& model,
                          const std::vector<std::string>& drawn, const RemoteByName& remote,
                          const std::vector<std::string>& inputs) {
  const std::vector<float> task = text_embedding(model, inputs);
  const std::string model_sha256 = content_sha256_hex(spec.model_path);
  std::vector<std::string> paths(drawn.size()), names = drawn;
  std::vector<double> score;
  size_t stored = 0;
  for (size_t i = 0; i < drawn.size(); ++i) {
    auto it = remote.find(drawn[i]);
    std::optional<std::vector<float>> e;
    std::string why;
    if (it != remote.end()) e = stored_embedding(*it->second, model_sha256, task.size(), why);
    if (e) {
      ++stored;
    } else {
      if (it != remote.end()) {
        say(spec.on_warning,
            fmt::format("module {}: {}; downloading it to embed its examples", drawn[i], why));
        paths[i] = names[i] = it->second->fetch();
      } else {
        paths[i] = drawn[i];
      }
      e = text_embedding(model, module_example_inputs(paths[i]));
    }
    score.push_back(cosine_similarity(task, *e));
  }
  std::vector<size_t> kept = best_first(score, spec.select.k, false);
  for (size_t i : kept)
    if (paths[i].empty()) paths[i] = names[i] = remote.at(drawn[i])->fetch();
  Retrieved r{{}, selection_json(spec.select, names, score, kept)};
  r.selection["hub_embeddings"] = stored;
  std::sort(kept.begin(), kept.end());
  for (size_t i : kept) r.paths.push_back(paths[i]);
  say(spec.on_note, fmt::format("select (retrieval): kept {} of {} modules ({} ranked by the hub's "
                                "stored embeddings, not downloaded unless kept)",
                                kept.size(), drawn.size(), stored));
  return r;
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
  check(!spec.pool.empty() || !spec.remote.empty(), "no LoRA modules given");
  std::vector<std::string> names = spec.pool;
  RemoteByName remote;
  for (const RemoteModule& m : spec.remote) {
    names.push_back(m.name);
    remote[m.name] = &m;
  }
  const std::vector<std::string> drawn =
      sample_modules(names, spec.sample, spec.seed, spec.sampler);
  std::vector<std::string> inputs;  // plain: the modules' examples are plain
  for (const TextExample& row : t.rows) inputs.push_back(row.input);
  const bool rank_remote =
      spec.select.rule == SelectRule::kRetrieval && spec.select.k < drawn.size() &&
      std::any_of(drawn.begin(), drawn.end(), [&](const auto& n) { return remote.count(n) > 0; });
  if (rank_remote) {  // the model first: it ranks the modules before any is downloaded
    t.model = load_model(spec.model_path, spec.load);
    Retrieved r = retrieve_remote(spec, *t.model, drawn, remote, inputs);
    t.selection = std::move(r.selection);
    t.modules = ModuleSet::load(r.paths, spec.load.bf16, spec.model_path);
  } else {
    std::vector<std::string> paths;
    for (const std::string& n : drawn) paths.push_back(remote.count(n) ? remote.at(n)->fetch() : n);
    t.modules = ModuleSet::load(paths, spec.load.bf16, spec.model_path);
  }
  for (const LoraModule& m : t.modules.modules())
    if (!base_model_matches(m.config.base_model_name_or_path, spec.model_path))
      say(spec.on_warning, fmt::format("module {} was made for {}, not for {}", m.path,
                                       m.config.base_model_name_or_path, spec.model_path));
  if (!t.model) t.model = load_model(spec.model_path, spec.load);
  std::vector<Example> examples;
  t.chat = spec.chat;
  for (const TextExample& row : t.rows) {
    const std::string input =
        spec.chat ? t.model->tokenizer().apply_chat_template(row.input) : row.input;
    examples.push_back(t.model->make_example(input, *row.output));
  }
  if (!rank_remote && spec.select.rule != SelectRule::kAll && spec.select.k < t.modules.size()) {
    Selection s =
        select_for_task(*t.model, t.modules, examples, inputs, spec.select, spec.objective);
    t.selection = selection_json(spec.select, t.modules.paths(), s.score, s.kept_index);
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
                       {"seconds", i < r.elapsed.size() ? r.elapsed[i] : r.seconds},
                       {"weights", e.w}});  // to score any point of the search again (bench/)
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

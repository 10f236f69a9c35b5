// LoraHub learning's task, assembled for any caller (`lorahub learn`, `lorahub objective`, a
// library user): the few-shot examples, the modules (sampled, then optionally selected), the
// base model and the objective, loaded in the order that fails fastest on bad input; and
// weights.json, the record of what learning found.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "adapt/learner.h"
#include "adapt/objective.h"
#include "eval/jsonl.h"
#include "eval/selection.h"
#include "lora/module_set.h"
#include "models/model.h"

namespace lorahub {

// A pool module that is not on disk yet (a hub's): a retrieval selection ranks it by the
// embedding the hub stores for it and fetches only the modules it keeps.
struct RemoteModule {
  std::string name;                    // "user/name@revision", for messages
  std::string embedding;               // the text of its kModuleEmbeddingFile, "" when it has none
  std::function<std::string()> fetch;  // downloads it (once); returns its folder
};

struct LearnTaskSpec {
  std::string model_path;  // HF model directory or .gguf
  LoadOptions load;
  std::vector<TextExample> rows;  // the few-shot examples, each with an output
  std::vector<std::string> pool;  // module directories
  // More modules, fetched only when needed: with a retrieval selection, the modules not kept are
  // never downloaded (one whose embedding is missing, or was made with another model file, is
  // downloaded and embedded here, with a warning). Without one, every one is fetched.
  std::vector<RemoteModule> remote;
  size_t sample = 0;  // draw this many of the pool (0 or more than it has = all)
  uint64_t seed = 42;
  SampleRule sampler = SampleRule::kFisherYates;
  SelectSpec select;  // then keep K of them (eval/selection.h)
  // Wrap each example's input in the model's chat template (user turn + generation prompt), as
  // `lorahub generate --chat` wraps its prompts; off for modules trained on plain prompts. The
  // retrieval selection compares the plain inputs (the modules' examples are plain).
  bool chat = false;
  ObjectiveOptions objective;
  // Notes for the user: a module made for another base model; what the selection kept.
  std::function<void(const std::string&)> on_warning;
  std::function<void(const std::string&)> on_note;
};

struct LearnTask {
  std::vector<TextExample> rows;
  ModuleSet modules;
  std::unique_ptr<Model> model;
  std::unique_ptr<Objective> objective;
  nlohmann::json selection;  // with a selection: rule, k, each pool module's score, the kept ones
  LossMode loss_mode = LossMode::kReference;
  bool chat = false;  // the inputs were wrapped in the chat template
};

// The few-shot examples of a JSONL file; throws naming file and line for a row without output.
std::vector<TextExample> read_learning_examples(const std::string& path);

// Throws Error naming the file or module at fault (no examples, an example without output, no
// modules, modules that cannot be composed, a model that cannot be loaded).
LearnTask load_learn_task(const LearnTaskSpec& spec);

// weights.json: {"modules", "weights", "objective",
// "history": [{"step", "objective", "best", "seconds", "weights"}],
// "optimizer", "seed", "loss_mode", "examples", "seconds", "compose", "compose_seconds",
// "forward_seconds", "selection", "chat"}; objectives that are not finite are null.
nlohmann::json weights_json(const LearnTask& task, const LearnResult& result,
                            const LearnOptions& options);

}  // namespace lorahub

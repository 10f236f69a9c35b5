// Module selection for large pools (issue 18): keep the K modules most likely to help with the
// few-shot task before composing them.
//   loss-rank:K   each module alone (its own adapter, as PEFT applies it) scored by the
//                 objective's loss term on the few-shot examples; the K lowest are kept.
//   retrieval:K   LoraRetriever-style (Zhao et al. 2024), with the base model as the encoder:
//                 the task's embedding is the mean over the few-shot inputs of the base model's
//                 mean last hidden state (Model::mean_hidden_states); a module's embedding is
//                 the same over its own examples, read from `examples.jsonl` in the module
//                 directory (JSONL rows {"input": ...[, "output": ...]}: what the module was
//                 trained on; the first kModuleExamples rows are used). The K modules of highest
//                 cosine similarity are kept. A module without the file is an error naming it.
#pragma once
#include <string>
#include <vector>

#include "adapt/objective.h"
#include "formats/module_embedding.h"
#include "lora/module_set.h"
#include "models/model.h"

namespace lorahub {

enum class SelectRule { kAll, kLossRank, kRetrieval };

struct SelectSpec {
  SelectRule rule = SelectRule::kAll;
  size_t k = 0;
};

// "" (keep all), "loss-rank:K" or "retrieval:K" with K >= 1; otherwise throws an Error that quotes
// the text and names the accepted forms (the caller adds its own context, e.g. a CLI flag).
SelectSpec parse_select(const std::string& text);
const char* select_rule_name(SelectRule rule);

inline constexpr size_t kModuleExamples = 20;
inline constexpr const char* kModuleExamplesFile = "examples.jsonl";

struct Selection {
  ModuleSet kept;             // in the order of the pool
  std::vector<double> score;  // per pool module: its loss (loss-rank) or similarity (retrieval)
  std::vector<size_t> kept_index;  // pool indices of the kept modules, best first
};

// The selection for a task: `examples` are its tokenized few-shot examples (for loss-rank),
// `inputs` their input texts (for retrieval, as the model sees them). K >= pool size keeps all.
Selection select_for_task(const Model& model, const ModuleSet& pool,
                          const std::vector<Example>& examples,
                          const std::vector<std::string>& inputs, const SelectSpec& spec,
                          const ObjectiveOptions& options);

// The mean of the mean hidden states of `texts` under the model as it is (no LoRA set).
std::vector<float> text_embedding(const Model& model, const std::vector<std::string>& texts);
double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b);

// The first kModuleExamples inputs of the module folder's examples.jsonl; throws naming the
// module when it has none.
std::vector<std::string> module_example_inputs(const std::string& module_dir);
// What retrieval compares for the module in `module_dir` (text_embedding of its example inputs),
// with what names it: the module's declared base model, the SHA-256 of the model at model_path
// (formats/digest.h), the engine version. A hub stores it as kModuleEmbeddingFile.
ModuleEmbedding compute_module_embedding(const Model& model, const std::string& model_path,
                                         const std::string& module_dir);
// Whether a stored embedding was computed as retrieval would compute it here: same method and
// example count, the model with this SHA-256, the model's width. "" if so, else why not.
std::string embedding_mismatch(const ModuleEmbedding& e, const std::string& model_sha256,
                               size_t width);

// Indices of the k best scores, best first (lowest when lower_is_better, else highest); ties
// keep the index order.
std::vector<size_t> best_first(const std::vector<double>& score, size_t k, bool lower_is_better);

}  // namespace lorahub

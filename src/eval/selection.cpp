#include "eval/selection.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/version.h"
#include "eval/jsonl.h"
#include "formats/digest.h"
#include "formats/peft_adapter.h"

namespace lorahub {
namespace fs = std::filesystem;

SelectSpec parse_select(const std::string& text) {
  if (text.empty()) return {};
  const size_t colon = text.find(':');
  const std::string rule = text.substr(0, colon);
  const std::string count = colon == std::string::npos ? "" : text.substr(colon + 1);
  SelectSpec spec;
  if (rule == "loss-rank")
    spec.rule = SelectRule::kLossRank;
  else if (rule == "retrieval")
    spec.rule = SelectRule::kRetrieval;
  else
    fail("module selection '{}' is not loss-rank:K or retrieval:K", text);
  char* end = nullptr;
  const long long k = std::strtoll(count.c_str(), &end, 10);
  check(!count.empty() && *end == '\0' && k >= 1,
        "module selection {}: K must be a whole number >= 1", text);
  spec.k = static_cast<size_t>(k);
  return spec;
}

const char* select_rule_name(SelectRule rule) {
  switch (rule) {
    case SelectRule::kLossRank:
      return "loss-rank";
    case SelectRule::kRetrieval:
      return "retrieval";
    default:
      return "all";
  }
}

std::vector<float> text_embedding(const Model& model, const std::vector<std::string>& texts) {
  check(!texts.empty(), "text_embedding: no texts");
  std::vector<std::vector<int32_t>> ids;
  for (const std::string& t : texts) ids.push_back(model.tokenizer().encode(t));
  std::vector<double> sum;
  constexpr size_t kBatch = 8;  // bounds the padded activations for long inputs
  for (size_t first = 0; first < ids.size(); first += kBatch) {
    const std::vector<std::vector<int32_t>> part(
        ids.begin() + first, ids.begin() + std::min(ids.size(), first + kBatch));
    for (const std::vector<float>& h : model.mean_hidden_states(part)) {
      sum.resize(h.size(), 0.0);
      for (size_t k = 0; k < h.size(); ++k) sum[k] += h[k];
    }
  }
  std::vector<float> mean(sum.size());
  for (size_t k = 0; k < sum.size(); ++k) mean[k] = static_cast<float>(sum[k] / texts.size());
  return mean;
}

double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  check(a.size() == b.size() && !a.empty(), "cosine similarity of vectors of sizes {} and {}",
        a.size(), b.size());
  double ab = 0, aa = 0, bb = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    ab += double(a[k]) * b[k];
    aa += double(a[k]) * a[k];
    bb += double(b[k]) * b[k];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

std::vector<std::string> module_example_inputs(const std::string& module_dir) {
  const fs::path file = fs::path(module_dir) / kModuleExamplesFile;
  check(fs::exists(file),
        "retrieval selection: module {} has no {} (its own examples, JSONL {{\"input\": ...}})",
        module_dir, kModuleExamplesFile);
  std::vector<std::string> inputs;
  for (const TextExample& row : read_jsonl_examples(file.string())) {
    if (inputs.size() == kModuleExamples) break;
    inputs.push_back(row.input);
  }
  check(!inputs.empty(), "{}: no examples", file.string());
  return inputs;
}

ModuleEmbedding compute_module_embedding(const Model& model, const std::string& model_path,
                                         const std::string& module_dir) {
  const fs::path config = fs::path(module_dir) / "adapter_config.json";
  ModuleEmbedding e;
  e.base_model = parse_adapter_config(read_text_file(config.string()), config.string())
                     .base_model_name_or_path;
  check(!e.base_model.empty(), "{}: no base_model_name_or_path (the embedding must name it)",
        config.string());
  const std::vector<std::string> inputs = module_example_inputs(module_dir);
  e.vector = text_embedding(model, inputs);
  e.examples = static_cast<int64_t>(inputs.size());
  e.model_sha256 = content_sha256_hex(model_path);
  e.engine = kEngineVersion;
  return e;
}

std::string embedding_mismatch(const ModuleEmbedding& e, const std::string& model_sha256,
                               size_t width) {
  if (e.model_sha256 != model_sha256)
    return fmt::format("computed with another model file (SHA-256 {}, ours {})",
                       e.model_sha256.substr(0, 12), model_sha256.substr(0, 12));
  if (e.vector.size() != width)
    return fmt::format("{} wide, the model's hidden states are {}", e.vector.size(), width);
  if (e.method != kModuleEmbeddingMethod) return "computed by another method";
  return "";
}

std::vector<size_t> best_first(const std::vector<double>& score, size_t k, bool lower_is_better) {
  std::vector<size_t> order(score.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return lower_is_better ? score[a] < score[b] : score[a] > score[b];
  });
  order.resize(std::min(k, order.size()));
  return order;
}

namespace {

std::vector<double> single_module_losses(const Model& model, const ModuleSet& pool,
                                         const std::vector<Example>& examples,
                                         const ObjectiveOptions& options) {
  std::vector<double> losses;
  for (const LoraModule& m : pool.modules()) {
    const ModuleSet alone = ModuleSet::from_modules({m});
    ObjectiveOptions plain = options;
    plain.combine = CombineOptions{};  // the module as it is: Σ wA, Σ wB at w = 1
    Objective objective(model, alone, examples, plain);
    losses.push_back(objective.loss({1.0}));
  }
  return losses;
}

std::vector<double> retrieval_similarities(const Model& model, const ModuleSet& pool,
                                           const std::vector<std::string>& inputs) {
  // Embeddings come from the base model (no adapter).
  const std::vector<float> task = text_embedding(model, inputs);
  std::vector<double> similarity;
  for (const LoraModule& m : pool.modules())
    similarity.push_back(
        cosine_similarity(task, text_embedding(model, module_example_inputs(m.path))));
  return similarity;
}

}  // namespace

Selection select_for_task(const Model& model, const ModuleSet& pool,
                          const std::vector<Example>& examples,
                          const std::vector<std::string>& inputs, const SelectSpec& spec,
                          const ObjectiveOptions& options) {
  Selection s;
  std::vector<size_t> order(pool.size());
  std::iota(order.begin(), order.end(), 0);
  if (spec.rule == SelectRule::kAll || spec.k >= pool.size()) {
    s.kept = ModuleSet::from_modules(pool.modules());
    s.kept_index = order;
    return s;
  }
  const bool by_loss = spec.rule == SelectRule::kLossRank;
  s.score = by_loss ? single_module_losses(model, pool, examples, options)
                    : retrieval_similarities(model, pool, inputs);
  // Best first (lowest loss, highest similarity); ties keep the pool order.
  s.kept_index = best_first(s.score, spec.k, by_loss);
  std::vector<size_t> in_pool_order = s.kept_index;
  std::sort(in_pool_order.begin(), in_pool_order.end());
  std::vector<LoraModule> kept;
  for (size_t i : in_pool_order) kept.push_back(pool[i]);
  s.kept = ModuleSet::from_modules(std::move(kept));
  return s;
}

}  // namespace lorahub

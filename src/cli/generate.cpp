// lorahub generate: greedy predictions for the inputs of a JSONL file, and the exact-match
// accuracy (DESIGN §1.6) when every row has an output.
//   --json: {"predictions": [...], "prediction_ids": [[...]...], "accuracy": percent or null}
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/command.h"
#include "cli/model_args.h"
#include "cli/model_commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "eval/jsonl.h"
#include "eval/metrics.h"

namespace lorahub::cli {

Generations generate_texts(Model& model, const std::vector<std::string>& inputs, int max_new_tokens,
                           int batch_size) {
  Generations out;
  const Tokenizer& tok = model.tokenizer();
  const size_t step = std::max(1, batch_size);
  Progress progress("generate", inputs.size());
  for (size_t first = 0; first < inputs.size(); first += step) {
    std::vector<std::vector<int32_t>> batch;
    for (size_t i = first; i < std::min(inputs.size(), first + step); ++i)
      batch.push_back(tok.encode(inputs[i]));
    for (auto& ids : model.generate(batch, max_new_tokens)) {
      out.texts.push_back(tok.decode(ids));
      out.ids.push_back(std::move(ids));
    }
    progress.update(out.texts.size());
  }
  progress.finish();
  return out;
}

namespace {

struct GenerateOptions {
  ModelArgs model;
  std::string data;
  int max_new_tokens = 256;
  int batch_size = 10;
  bool json = false;
};

std::optional<double> accuracy_if_targets(const std::vector<TextExample>& rows,
                                          const std::vector<std::string>& predictions) {
  std::vector<std::string> targets;
  for (const TextExample& row : rows) {
    if (!row.output) return std::nullopt;
    targets.push_back(*row.output);
  }
  return exact_match_accuracy(predictions, targets);
}

void run(const GenerateOptions& o) {
  const auto rows = read_jsonl_examples(o.data);
  check(!rows.empty(), "{}: no examples", o.data);
  auto model = o.model.load();
  std::vector<std::string> inputs;
  for (const TextExample& row : rows) inputs.push_back(o.model.prompt(*model, row.input));
  if (o.json) Progress::set_quiet(true);
  const Generations gen = generate_texts(*model, inputs, o.max_new_tokens, o.batch_size);
  const auto accuracy = accuracy_if_targets(rows, gen.texts);
  if (o.json) {
    nlohmann::json j{{"predictions", gen.texts},
                     {"prediction_ids", gen.ids},
                     {"accuracy", accuracy ? nlohmann::json(*accuracy) : nlohmann::json()}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return;
  }
  for (const std::string& text : gen.texts) std::cout << text << '\n';
  if (accuracy)
    std::cout << fmt::format("accuracy: {:.2f}% ({} examples)\n", *accuracy, rows.size());
}

const Registrar reg("generate", 41, [](CLI::App& app) {
  auto opts = std::make_shared<GenerateOptions>();
  auto* cmd = app.add_subcommand("generate", "Greedy predictions for JSONL inputs (+ accuracy)");
  opts->model.add_options(cmd);
  cmd->add_option("--data", opts->data, "JSONL rows {input[, output]} or {context[, completion]}")
      ->required();
  cmd->add_option("--max-new-tokens", opts->max_new_tokens, "Tokens to generate at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--batch-size", opts->batch_size, "Inputs per batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", opts->json, "Print one JSON object");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli

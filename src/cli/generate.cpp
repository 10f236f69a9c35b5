// lorahub generate: predictions for the inputs of a JSONL file (greedy unless --temperature),
// and the exact-match accuracy (DESIGN §1.6) when every row has an output. With --answer the
// predictions end by the answer rule of lorahub bbh (eval/answer.h), so the accuracy is the
// one bbh would report.
//   plain: one JSON string per prediction per line (a prediction may hold newlines), then
//          "accuracy: ..." when there are targets
//   --json: {"predictions": [...], "prediction_ids": [[...]...], "finish_reasons": [...],
//            "accuracy": percent or null}
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
#include "eval/answer.h"
#include "eval/jsonl.h"
#include "eval/metrics.h"

namespace lorahub::cli {

std::vector<Decoded> generate_with_progress(const Model& model,
                                            const std::vector<std::string>& inputs,
                                            GenerateOptions options) {
  Progress progress("generate", inputs.size());
  options.on_progress = [&](size_t done, size_t) { progress.update(done); };
  std::vector<Decoded> out = generate_texts(model, inputs, options);
  progress.finish();
  return out;
}

namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string data;
  lorahub::GenerateOptions generation;
  bool json = false;
  bool answer = false;  // --answer: the answer rule's stops (eval/answer.h)
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

void run(const GenerateArgs& o) {
  const auto rows = read_jsonl_examples(o.data);
  check(!rows.empty(), "{}: no examples", o.data);
  auto model = o.model.load();
  const auto side = o.model.side_adapter(*model);
  std::vector<std::string> inputs;
  for (const TextExample& row : rows) inputs.push_back(o.model.prompt(*model, row.input));
  if (o.json) Progress::set_quiet(true);
  GenerateOptions generation = o.generation;
  generation.lora = side.get();  // a side path (--arrow, int8/quantized) or none (merged)
  if (o.answer)
    for (const std::string& stop : kAnswerStops) generation.decode.stop.push_back(stop);
  const std::vector<Decoded> gen = generate_with_progress(*model, inputs, generation);
  std::vector<std::string> texts;
  nlohmann::json ids = nlohmann::json::array(), reasons = nlohmann::json::array();
  for (const Decoded& d : gen) {
    texts.push_back(d.text);
    ids.push_back(d.ids);
    reasons.push_back(finish_reason_name(d.finish));
  }
  const auto accuracy = accuracy_if_targets(rows, texts);
  if (o.json) {
    nlohmann::json j{{"predictions", texts},
                     {"prediction_ids", ids},
                     {"finish_reasons", reasons},
                     {"accuracy", accuracy ? nlohmann::json(*accuracy) : nlohmann::json()}};
    std::cout << j.dump() << '\n';
    return;
  }
  for (const std::string& text : texts) std::cout << nlohmann::json(text).dump() << '\n';
  if (accuracy)
    std::cout << fmt::format("accuracy: {:.2f}% ({} examples)\n", *accuracy, rows.size());
}

const Registrar reg("generate", 41, [](CLI::App& app) {
  auto opts = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Predictions for JSONL inputs (+ accuracy)");
  opts->model.add_options(cmd);
  cmd->add_option("--data", opts->data, "JSONL rows {input[, output]} or {context[, completion]}")
      ->required();
  DecodeOptions& d = opts->generation.decode;
  cmd->add_option("--max-new-tokens", d.max_new_tokens, "Tokens to generate at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch-size", opts->generation.batch_size, "Inputs per batch")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 16));
  cmd->add_option("--stop", d.stop, "End a prediction where this text appears (repeatable)");
  cmd->add_flag("--answer", opts->answer,
                "End each prediction by the evaluation's answer rule, as lorahub bbh does: at "
                "the first blank line or \"Q:\" (adds those to --stop)");
  cmd->add_option("--temperature", d.sampling.temperature,
                  "Sample at this temperature (0 = greedy)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", d.sampling.top_k, "Sample among the k most likely tokens (0 = all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--top-p", d.sampling.top_p, "Sample within this probability mass")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", d.sampling.seed, "Seed of the sampler")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print one JSON object");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli

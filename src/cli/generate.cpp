// lorahub generate: predictions for the inputs of a JSONL file (greedy unless --temperature),
// and the exact-match accuracy (DESIGN §1.6) when every row has an output. With --answer the
// predictions end by the answer rule of lorahub bbh (eval/answer.h), so the accuracy is the
// one bbh would report.
//   plain: one JSON string per prediction per line (a prediction may hold newlines), then
//          "accuracy: ..." when there are targets
//   --json: {"predictions": [...], "prediction_ids": [[...]...], "finish_reasons": [...],
//            "accuracy": percent or null, "timings": {prefill_seconds, prefill_tokens,
//            decode_seconds, decode_steps, decode_rows} (api::GenerationTimings)}
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <optional>

#include "cli/command.h"
#include "cli/model_args.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::string data;
  api::GenerationOptions generation;
  bool json = false;
  bool answer = false;  // --answer: the answer rule's stops (api::answer_stops)
};

std::optional<double> accuracy_if_targets(const std::vector<api::TextExample>& rows,
                                          const std::vector<std::string>& predictions) {
  std::vector<std::string> targets;
  for (const api::TextExample& row : rows) {
    if (!row.output) return std::nullopt;
    targets.push_back(*row.output);
  }
  return api::exact_match_accuracy(predictions, targets);
}

// The finish reason as this command has always printed it: "eos" and "stop" apart.
const char* finish_reason(const api::Generation& g) {
  return g.eos ? "eos" : g.finish_reason.c_str();
}

void run(const GenerateArgs& o) {
  const auto rows = api::read_examples(o.data);
  check(!rows.empty(), "{}: no examples", o.data);
  const auto model = o.model.load();
  api::Session session =
      o.model.session(model);  // --arrow's router, a side-path --lora, or none (merged)
  std::vector<std::string> inputs;
  for (const api::TextExample& row : rows) inputs.push_back(o.model.prompt(*model, row.input));
  if (o.json) api::ProgressBar::set_quiet(true);
  api::GenerationOptions generation = o.generation;
  if (o.answer)
    for (const std::string& stop : api::answer_stops()) generation.stop.push_back(stop);
  api::ProgressBar progress("generate", inputs.size());
  generation.on_progress = [&](std::string_view, size_t done, size_t) {
    progress.update(done);
    return true;
  };
  api::GenerationTimings timings;
  const std::vector<api::Generation> gen = session.generate(inputs, generation, &timings);
  progress.finish();
  std::vector<std::string> texts;
  nlohmann::json ids = nlohmann::json::array(), reasons = nlohmann::json::array();
  for (const api::Generation& g : gen) {
    texts.push_back(g.text);
    ids.push_back(g.ids);
    reasons.push_back(finish_reason(g));
  }
  const auto accuracy = accuracy_if_targets(rows, texts);
  if (o.json) {
    nlohmann::json j{{"predictions", texts},
                     {"prediction_ids", ids},
                     {"finish_reasons", reasons},
                     {"accuracy", accuracy ? nlohmann::json(*accuracy) : nlohmann::json()},
                     {"timings",
                      {{"prefill_seconds", timings.prefill_seconds},
                       {"prefill_tokens", timings.prefill_tokens},
                       {"decode_seconds", timings.decode_seconds},
                       {"decode_steps", timings.decode_steps},
                       {"decode_rows", timings.decode_rows}}}};
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
  api::GenerationOptions& d = opts->generation;
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
  cmd->add_option("--temperature", d.temperature, "Sample at this temperature (0 = greedy)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--top-k", d.top_k, "Sample among the k most likely tokens (0 = all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 30));
  cmd->add_option("--top-p", d.top_p, "Sample within this probability mass")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", d.seed, "Seed of the sampler")->capture_default_str();
  cmd->add_flag("--json", opts->json, "Print one JSON object");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli

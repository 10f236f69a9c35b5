// lorahub score: teacher-forced cross-entropy of (input, output) examples (eval/score.h),
// computed as transformers computes `loss` (label padding ignored; mean over all label tokens of
// a batch).
//   --json: {"examples": [{"loss": token-mean CE, "tokens": n}...], "batch_loss": Σ CE / Σ n}
//   --dump-logits FILE: the label-position logits as safetensors, "example.<i>" [tokens, vocab].
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/command.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "eval/jsonl.h"
#include "eval/score.h"
#include "formats/state_dict.h"

namespace lorahub::cli {
namespace {

struct ScoreOptions {
  ModelArgs model;
  std::string data, dump_logits;
  int batch_size = 16;
  bool json = false;
};

void dump_logits(const Model& model, const std::vector<Example>& examples, int batch_size,
                 const SequenceLora& lora, const std::string& path) {
  StateDict dict(path);
  for_each_batch(examples, batch_size, [&](size_t first, const std::vector<Example>& batch) {
    auto logits = model.label_logits(batch, lora);
    for (size_t i = 0; i < logits.size(); ++i)
      dict.add(fmt::format("example.{}", first + i), std::move(logits[i]));
  });
  save_safetensors(path, dict);
}

void print_report(const ScoreReport& report, bool json) {
  if (json) {
    nlohmann::json examples = nlohmann::json::array();
    for (const ExampleLoss& l : report.examples)
      examples.push_back({{"loss", token_mean(l)}, {"tokens", l.tokens}});
    std::cout << nlohmann::json{{"examples", examples}, {"batch_loss", report.batch_loss}}.dump()
              << '\n';
    return;
  }
  for (size_t i = 0; i < report.examples.size(); ++i)
    fmt::print("example {}: loss {:.6f} over {} tokens\n", i, token_mean(report.examples[i]),
               report.examples[i].tokens);
  fmt::print("batch loss: {:.6f}\n", report.batch_loss);
}

void run(const ScoreOptions& o) {
  const auto rows = read_jsonl_examples(o.data);
  check(!rows.empty(), "{}: no examples", o.data);
  auto model = o.model.load();
  const auto side = o.model.side_adapter(*model);
  const SequenceLora lora = o.model.sequence_lora(side);
  auto prompted = rows;
  for (TextExample& row : prompted) row.input = o.model.prompt(*model, row.input);
  const auto examples = tokenize_examples(*model, prompted, o.data);
  if (!o.dump_logits.empty()) dump_logits(*model, examples, o.batch_size, lora, o.dump_logits);
  print_report(score_examples(*model, examples, o.batch_size, lora), o.json);
}

const Registrar reg("score", 40, [](CLI::App& app) {
  auto opts = std::make_shared<ScoreOptions>();
  auto* cmd = app.add_subcommand("score", "Cross-entropy of (input, output) examples (JSONL)");
  opts->model.add_options(cmd);
  cmd->add_option("--data", opts->data, "JSONL rows {input, output} or {context, completion}")
      ->required();
  cmd->add_option("--batch-size", opts->batch_size, "Examples per forward pass (0 = all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 16));
  cmd->add_flag("--json", opts->json, "Print one JSON object");
  cmd->add_option("--dump-logits", opts->dump_logits,
                  "Write label-position logits to this safetensors file (debugging, parity)");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli

// lorahub score: teacher-forced cross-entropy of (input, output) examples (api::Session::score),
// computed as transformers computes `loss` (label padding ignored; mean over all label tokens of
// a batch).
//   --json: {"examples": [{"loss": token-mean CE, "tokens": n}...], "batch_loss": Σ CE / Σ n}
//   --dump-logits FILE: the label-position logits as safetensors, "example.<i>" [tokens, vocab].
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

#include "cli/command.h"
#include "cli/model_args.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

struct ScoreOptions {
  ModelArgs model;
  std::string data, dump_logits;
  int batch_size = 16;
  bool json = false;
};

void dump_logits(api::Session& session, const std::vector<std::string>& inputs,
                 const std::vector<std::string>& outputs, int batch_size, const std::string& path) {
  std::vector<std::pair<std::string, api::Matrix>> tensors;
  for (api::Matrix& m : session.label_logits(inputs, outputs, batch_size))
    tensors.emplace_back(fmt::format("example.{}", tensors.size()), std::move(m));
  api::save_safetensors(path, tensors);
}

// The token-mean cross-entropy of one example (0 for no tokens).
double token_mean(const api::ExampleScore& s) {
  return s.tokens > 0 ? s.loss_sum / static_cast<double>(s.tokens) : 0.0;
}

// transformers' loss over all examples as one batch: Σ CE / Σ tokens.
double batch_loss(const std::vector<api::ExampleScore>& scores) {
  double ce = 0.0;
  int64_t tokens = 0;
  for (const api::ExampleScore& s : scores) {
    ce += s.loss_sum;
    tokens += s.tokens;
  }
  return tokens > 0 ? ce / static_cast<double>(tokens) : 0.0;
}

void print_report(const std::vector<api::ExampleScore>& scores, bool json) {
  if (json) {
    nlohmann::json examples = nlohmann::json::array();
    for (const api::ExampleScore& s : scores)
      examples.push_back({{"loss", token_mean(s)}, {"tokens", s.tokens}});
    std::cout << nlohmann::json{{"examples", examples}, {"batch_loss", batch_loss(scores)}}.dump()
              << '\n';
    return;
  }
  for (size_t i = 0; i < scores.size(); ++i)
    fmt::print("example {}: loss {:.6f} over {} tokens\n", i, token_mean(scores[i]),
               scores[i].tokens);
  fmt::print("batch loss: {:.6f}\n", batch_loss(scores));
}

void run(const ScoreOptions& o) {
  const auto rows = api::read_examples(o.data);
  check(!rows.empty(), "{}: no examples", o.data);
  const auto model = o.model.load();
  api::Session session = o.model.session(model);
  std::vector<std::string> inputs, outputs;
  for (const api::TextExample& row : rows) inputs.push_back(o.model.prompt(*model, row.input));
  for (const api::TextExample& row : rows) {
    check(row.output.has_value(), "{}:{}: scoring needs an 'output' (or 'completion')", o.data,
          row.line);
    outputs.push_back(*row.output);
  }
  if (!o.dump_logits.empty()) dump_logits(session, inputs, outputs, o.batch_size, o.dump_logits);
  print_report(session.score(inputs, outputs, o.batch_size), o.json);
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

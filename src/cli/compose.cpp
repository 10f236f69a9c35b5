// lorahub compose: combine PEFT LoRA modules with given weights by one of the methods of
// api::ComposeOptions and write the result as a PEFT adapter directory (adapter_config.json +
// adapter_model.safetensors, loadable by PeftModel.from_pretrained), plus compose.json
// {"modules", "weights", "method", "density", "majority_sign", "svd_rank", "svd_clamp", "seed"}.
// --out-gguf FILE --base MODEL: the result also as a llama.cpp GGUF LoRA for MODEL.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "cli/command.h"
#include "cli/compose_args.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {
namespace fs = std::filesystem;

struct ComposeCommand {
  std::vector<std::string> lora;
  std::string lora_list, weights, out, out_gguf, base;
  ComposeArgs compose;
  uint64_t seed = 42;
  bool overwrite = false;
};

nlohmann::json optional_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

// The --lora modules, then those of the --lora-list file.
std::vector<std::string> module_paths(const ComposeCommand& a) {
  std::vector<std::string> paths = a.lora;
  if (!a.lora_list.empty())
    for (std::string& p : api::read_module_list(a.lora_list)) paths.push_back(std::move(p));
  check(!paths.empty(), "no LoRA modules given");
  return paths;
}

void run(const ComposeCommand& a) {
  const api::ComposeOptions options = a.compose.options(a.seed);
  const std::vector<double> w = parse_weight_list(a.weights);
  check(a.overwrite || !fs::exists(a.out), "{}: already exists (pass --overwrite to replace it)",
        a.out);
  check(a.out_gguf.empty() || !a.base.empty(),
        "--out-gguf needs --base: the model the GGUF LoRA is for");
  const api::ModuleSet set =
      api::ModuleSet::load(module_paths(a), {.hub_ids = false, .base_model = a.base});
  check(w.size() == set.size(), "--weights: {} weights for {} modules", w.size(), set.size());
  const auto combined = set.compose(w, options);
  combined->save(a.out);
  if (!a.out_gguf.empty()) combined->save_gguf(a.out_gguf, a.base);
  const nlohmann::json summary{{"modules", set.names()},
                               {"weights", w},
                               {"method", a.compose.method},
                               {"density", optional_json(options.density)},
                               {"majority_sign", a.compose.majority_sign},
                               {"svd_rank", combined->rank()},
                               {"svd_clamp", optional_json(options.svd_clamp)},
                               {"seed", a.seed}};
  api::write_file_atomic((fs::path(a.out) / "compose.json").string(), summary.dump(2) + "\n");
  fmt::print("wrote {}{} ({} of {} modules, rank {})\n", a.out,
             a.out_gguf.empty() ? "" : " and " + a.out_gguf, a.compose.method, set.size(),
             combined->rank());
}

const Registrar reg("compose", 52, [](CLI::App& app) {
  auto a = std::make_shared<ComposeCommand>();
  auto* cmd = app.add_subcommand("compose", "Combine LoRA modules with given weights (PEFT out)");
  cmd->add_option("--lora", a->lora, "LoRA modules (PEFT adapter directories or GGUF LoRAs)");
  cmd->add_option("--lora-list", a->lora_list,
                  "File with one module (directory or .gguf) per line");
  cmd->add_option("--weights", a->weights, "Comma-separated weights, one per module")->required();
  a->compose.add_options(cmd, "--method");
  cmd->add_option("--seed", a->seed, "Seed for DARE's random masks")->capture_default_str();
  cmd->add_option("--out", a->out, "Output adapter directory")->required();
  cmd->add_option("--out-gguf", a->out_gguf, "Also write the result as a GGUF LoRA file");
  cmd->add_option("--base", a->base,
                  "Base model (GGUF file or HF directory): for --out-gguf, and for reading "
                  "Llama GGUF LoRAs");
  cmd->add_flag("--overwrite", a->overwrite, "Replace an existing output directory");
  cmd->callback([a] { run(*a); });
});

}  // namespace
}  // namespace lorahub::cli

#include "cli/model_args.h"

namespace lorahub::cli {

void ModelArgs::add_options(CLI::App* cmd) {
  cmd->add_option("--model", model, "HF model directory (config.json, weights, tokenizer)")
      ->required();
  cmd->add_option("--threads", threads, "Compute threads (0 = all cores)")->capture_default_str();
}

std::unique_ptr<Model> ModelArgs::load() const {
  LoadOptions options;
  options.threads = threads;
  return load_model(model, options);
}

}  // namespace lorahub::cli

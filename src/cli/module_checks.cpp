#include "cli/module_checks.h"

#include <fmt/format.h>

#include "lora/base_model.h"

namespace lorahub::cli {

void warn_about_base_model(const LoraModule& module, const std::string& model_path) {
  const std::string& base = module.config.base_model_name_or_path;
  if (!base_model_matches(base, model_path))
    fmt::print(stderr, "lorahub: warning: module {} was made for {}, not for {}\n", module.path,
               base, model_path);
}

void warn_about_base_models(const ModuleSet& modules, const std::string& model_path) {
  for (const LoraModule& m : modules.modules()) warn_about_base_model(m, model_path);
}

void warn_if_sample_exceeds(size_t sample, size_t available) {
  if (sample > available)
    fmt::print(stderr,
               "lorahub: warning: --sample {} but only {} modules are available; using all {}\n",
               sample, available, available);
}

}  // namespace lorahub::cli

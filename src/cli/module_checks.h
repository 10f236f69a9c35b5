// Warnings about the LoRA modules a command was given, printed on stderr (the command goes on).
#pragma once
#include <cstddef>
#include <string>

#include "lora/module_set.h"

namespace lorahub::cli {

// "lorahub: warning: module DIR was made for BASE, not for MODEL" for each module whose
// base_model_name_or_path does not name the model (lora/base_model.h).
void warn_about_base_models(const ModuleSet& modules, const std::string& model_path);
void warn_about_base_model(const LoraModule& module, const std::string& model_path);

// --sample K with fewer than K modules available: says that all of them are used.
void warn_if_sample_exceeds(size_t sample, size_t available);

}  // namespace lorahub::cli

// Writing LoraHub's result: the composed adapter as a PEFT directory, and the base model with
// the adapter merged in as an HF model directory (what merge_and_unload + save_pretrained give).
#pragma once
#include <string>

#include "lora/module_set.h"
#include "models/model.h"

namespace lorahub {

// adapter_config.json (the first module's config) + adapter_model.safetensors into `dir`.
void save_composed_adapter(const LoraModule& composed, const std::string& dir);

// Merges `composed` into `model` (which is changed) and writes `out_dir`: model.safetensors
// with the merged weights, plus config.json, generation_config.json and the tokenizer files
// copied from `base_dir`.
void save_merged_model(Model& model, const LoraModule& composed, const std::string& base_dir,
                       const std::string& out_dir);

}  // namespace lorahub

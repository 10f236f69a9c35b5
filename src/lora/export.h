// Writing LoraHub's result: the composed adapter as a PEFT directory, and the base model with
// the adapter merged in as an HF model directory (what merge_and_unload + save_pretrained give).
#pragma once
#include <string>

#include "lora/module_set.h"
#include "models/model.h"

namespace lorahub {

// adapter_config.json (the first module's config) + adapter_model.safetensors into `dir`.
void save_composed_adapter(const LoraModule& composed, const std::string& dir);

// Merges `composed` into `model` (which is changed) and writes a model that loads on its own into
// `out_dir`; returns the path of what it wrote, for the message.
//  - an HF directory base: model.safetensors with the merged weights, plus config.json,
//    generation_config.json and the tokenizer files copied from `base`;
//  - a GGUF base: model.gguf, the base's key/values (tokenizer, chat template...) unchanged but
//    for general.file_type, every tensor the model holds written under its GGUF name (q/k rows
//    permuted back to llama.cpp's layout for Llama): matrices in F16 (BF16 for one with values
//    beyond F16's range), vectors in F32, as llama.cpp's converter writes models; others copied
//    as they are. It loads in lorahub and in llama.cpp.
std::string save_merged_model(Model& model, const LoraModule& composed, const std::string& base,
                              const std::string& out_dir);

}  // namespace lorahub

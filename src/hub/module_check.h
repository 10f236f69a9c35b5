// Validation of an uploaded LoRA module before anything is stored: adapter_config.json must
// parse as a PEFT LoRA config and the weights must parse with our safetensors reader and agree
// with the config (lora_A [r, in], lora_B [out, r]). Returns what the hub records about it.
#pragma once
#include <string>
#include <vector>

#include "hub/meta_store.h"

namespace lorahub::hub {

struct UploadedFile {
  std::string path;
  std::string content;
};

// Throws Error naming the file and field at fault. Fills base_model, rank, alpha and targets.
ModuleMeta inspect_module(const std::vector<UploadedFile>& files);

}  // namespace lorahub::hub
